package densenet

import (
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/summary"
)

func testBackend(t testing.TB) compute.Backend {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildOnly builds (compiles, does not run) a DenseNet on a [1, size, size, 3] input and returns
// the store and recorded layers. The structure is the same on every backend, so it builds on the
// pure-Go backend, whose compilation is immediate (XLA's took 13-28 s per DenseNet on an H200).
func buildOnly(t *testing.T, size int, configure func(*Builder) *Builder) (*model.Store, *summary.Recorder) {
	t.Helper()
	gob, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gob.Finalize)
	store := model.NewStore()
	rec := &summary.Recorder{}
	exec, err := model.NewExec(gob, store, func(scope *model.Scope, x *Node) *Node {
		return configure(New(scope, x).Record(rec)).Done()
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := exec.Compile(shapes.Make(dtypes.Float32, 1, size, size, 3)); err != nil {
		t.Fatal(err)
	}
	t.Logf("compiled in %s", time.Since(start))
	return store, rec
}

func TestParameterCounts(t *testing.T) {
	cases := []struct {
		preset                string
		classes, size         int
		total, trainable, bns int
	}{
		{"densenet121", 2, 150, 7039554, 6955906, 0},
		{"densenet121", 1000, 32, 8062504, 0, 0},
		{"densenet169", 1000, 32, 14307880, 0, 0},
		{"densenet201", 1000, 32, 20242984, 0, 0},
	}
	for _, c := range cases {
		store, rec := buildOnly(t, c.size, func(b *Builder) *Builder { return b.Preset(c.preset).Classes(c.classes) })
		s := summary.Build(c.preset, rec, store, "/"+c.preset)
		if s.Total != c.total {
			t.Errorf("%s, %d classes: %s parameters, want %s", c.preset, c.classes, summary.Commas(s.Total), summary.Commas(c.total))
		}
		if c.trainable != 0 && s.Trainable != c.trainable {
			t.Errorf("%s: %s trainable, want %s", c.preset, summary.Commas(s.Trainable), summary.Commas(c.trainable))
		}
		if c.classes == 2 && !strings.Contains(s.String(), "conv5_block16_2_conv (Conv2D)") {
			t.Errorf("summary lacks Keras layer names:\n%s", s)
		}
	}
}
