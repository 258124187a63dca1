package training

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
)

// TestRunSavedBeforeTheRenamesLoads: a run folder written on 2026-12-01, before the
// recomputation switch was renamed (its JSON field "Checkpoint") and the resizer's fields became
// the model configuration's own (testdata/run-2026-12-01: `learnresize train -small -epochs 1
// -grad-checkpoint` on the development photos, at commit 4b4a9cb), still loads: its configuration
// reads with Recompute on and is compatible with today's for resuming, its weights fill today's
// model without a variable created anew, and resizer.Load reads its resizer.
func TestRunSavedBeforeTheRenamesLoads(t *testing.T) {
	b := testBackend(t)
	dir := "testdata/run-2026-12-01"
	ckpt, err := LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	meta, hist, err := readCheckpoint(store, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	want := Small()
	want.Model.Recompute = true
	if meta.Epoch != 1 || !meta.Config.Model.Recompute || meta.Config.Model.TargetHeight != 32 || meta.Config.Model.Filters != 4 ||
		len(hist.Epochs) != 1 {
		t.Errorf("read %+v, history of %d epochs", meta, len(hist.Epochs))
	}
	if err := want.compatible(meta.Config); err != nil {
		t.Errorf("today's small configuration cannot resume it: %v", err)
	}
	count := func() int {
		n := 0
		for range store.IterVariables() {
			n++
		}
		return n
	}
	before := count()
	var logits *tensors.Tensor
	logits, err = model.CallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
		x := Zeros(g, shapes.Make(dtypes.Float32, 2, 64, 64, 3))
		return models.Build(scope, x, meta.Config.Model, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := count(); after != before {
		t.Errorf("building today's model on the loaded weights created %d variables (names changed?)", after-before)
	}
	for _, v := range tensors.MustCopyFlatData[float32](logits) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logits %v", tensors.MustCopyFlatData[float32](logits))
		}
	}
	rz, err := resizer.Load(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c := rz.Config(); c.TargetHeight != 32 || c.Filters != 4 || c.ResBlocks != 1 {
		t.Errorf("resizer %+v", c)
	}
}
