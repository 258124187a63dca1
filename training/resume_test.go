package training

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/internal/testimages"
)

func TestFitResumeAndRefusals(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	ctx := context.Background()

	full := t.TempDir()
	var log strings.Builder
	h, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: full, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	// The training loss must fall and the training set be learnt. Validation only has to stay sane:
	// in 15 steps batch norm's moving statistics (momentum 0.99, as in Keras) are still far from the
	// batch statistics, so validation loss and accuracy wander (0.652, 0.667, 0.656 on XLA on an
	// H200; 2.03, 1.72, ... on the go backend). Evaluation-mode numbers are
	// checked against PyTorch in densenet's and resizer's parity tests.
	if len(h.Epochs) != 3 || h.Epochs[2].Loss >= h.Epochs[0].Loss || h.Epochs[2].Accuracy < 0.9 {
		t.Errorf("training did not learn: %+v", h.Epochs)
	}
	for _, e := range h.Epochs {
		if !(e.ValLoss > 0 && e.ValLoss < 20) || e.ValAccuracy < 0 || e.ValAccuracy > 1 { // NaN fails too
			t.Errorf("epoch %d: validation loss %v, accuracy %v: diverged or not computed", e.Epoch, e.ValLoss, e.ValAccuracy)
		}
	}
	if !strings.Contains(log.String(), "Epoch 3/3") || !strings.Contains(log.String(), "val_accuracy:") ||
		!strings.Contains(log.String(), "graphs built: 2 train") {
		t.Errorf("log:\n%s", log.String())
	}
	// 36 examples in batches of 8: one graph for the full batches and one for the last batch of 4,
	// both built in epoch 1; later epochs must not recompile.
	for i, e := range h.Epochs {
		wantCompiles := 0
		if i == 0 {
			wantCompiles = 2
		}
		if e.Steps != 5 || e.TrainGraphs != 2 || e.CompileSteps != wantCompiles || (e.CompileSeconds > 0) != (wantCompiles > 0) ||
			e.StepMedianMs <= 0 || e.StepSeconds <= 0 || e.DataWaitSeconds < 0 || e.DataWaitSeconds > e.Seconds ||
			e.CompileSeconds+e.StepSeconds+e.DataWaitSeconds > e.Seconds*1.001 || math.IsNaN(e.Overhead()) || e.ValGraphs < 1 {
			t.Errorf("epoch %d timing/compilation record: %+v", i+1, e)
		}
	}
	for _, f := range []string{"history.json", "history.csv", "LATEST", "checkpoints/epoch-0003/training.json"} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Error(err)
		}
	}
	// The reported validation numbers are the example-weighted means over the whole split, computed
	// with the final weights (a fresh store loaded from the last checkpoint, a fresh graph).
	wantLoss, wantAcc := independentEval(t, b, cfg, filepath.Join(full, "checkpoints", "epoch-0003"), tinyData().Val)
	if math.Abs(h.Last().ValLoss-wantLoss) > 1e-5 || math.Abs(h.Last().ValAccuracy-wantAcc) > 1e-9 {
		t.Errorf("reported val loss/accuracy %.6f/%.4f, independent evaluation %.6f/%.4f", h.Last().ValLoss, h.Last().ValAccuracy, wantLoss, wantAcc)
	}
	if got, err := LoadHistory(full); err != nil || len(got.Epochs) != 3 || got.Params != h.Params || h.Params == 0 {
		t.Errorf("history.json: %+v, %v", got, err)
	}
	// Running a finished run again without Resume: refused, saying it is finished, where its results
	// are and how to extend it.
	_, err = Fit(ctx, b, cfg, tinyData(), Options{Dir: full, SkipMemoryCheck: true})
	if !errors.Is(err, ErrCheckpointExists) {
		t.Errorf("re-run of a finished run: %v, want ErrCheckpointExists", err)
	} else {
		for _, want := range []string{"holds a finished run (3 epochs)", "results in " + full + ": history.json, history.csv",
			"-resume and -epochs above 3", "choose another directory"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("re-run of a finished run: %q lacks %q", err, want)
			}
		}
	}

	// Interrupted after epoch 1 (context cancelled), then resumed: same epochs as the full run.
	part := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	_, err = Fit(cctx, b, cfg, tinyData(), Options{Dir: part, OnEpoch: func(h *History) {
		if len(h.Epochs) == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	// A leftover temporary checkpoint of a killed save must be ignored and cleaned up.
	if err := os.MkdirAll(filepath.Join(part, "checkpoints", ".tmp-killed"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: part}); !errors.Is(err, ErrCheckpointExists) ||
		!strings.Contains(err.Error(), "1 of 3 epochs done): use -resume to continue it") || strings.Contains(err.Error(), "finished") {
		t.Errorf("re-run without -resume: %v, want ErrCheckpointExists saying how to continue the unfinished run", err)
	}
	data := tinyData()
	resumed, err := Fit(ctx, b, cfg, data, Options{Dir: part, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Train.(*memData).yieldedEpochs; len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("resumed run trained epochs %v, want [1 2] (0-based)", got)
	}
	if len(resumed.Epochs) != 3 {
		t.Fatalf("resumed history has %d epochs", len(resumed.Epochs))
	}
	for i := range 3 {
		a, c := h.Epochs[i], resumed.Epochs[i]
		near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-5 || backendtest.Close(b, y, x) }
		if !near(a.Loss, c.Loss) || !near(a.ValLoss, c.ValLoss) {
			t.Errorf("epoch %d: uninterrupted loss %.6f/%.6f, interrupted+resumed %.6f/%.6f", i+1, a.Loss, a.ValLoss, c.Loss, c.ValLoss)
		}
	}
	// Resuming a finished run trains nothing and returns its history.
	again, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: part, Resume: true})
	if err != nil || len(again.Epochs) != 3 || again.Params != h.Params || again.Last() != resumed.Last() {
		t.Errorf("resuming a finished run: %v, %+v", err, again)
	}
	if _, err := os.Stat(filepath.Join(part, "checkpoints", ".tmp-killed")); !os.IsNotExist(err) {
		t.Errorf("stale temporary checkpoint not cleaned: %v", err)
	}

	// Resuming with another model configuration is refused, naming the problem.
	other := cfg
	other.Model.Filters = 8
	if _, err := Fit(ctx, b, other, tinyData(), Options{Dir: part, Resume: true}); err == nil || !strings.Contains(err.Error(), "another configuration") {
		t.Errorf("resume with other config: %v", err)
	}
	// A LATEST pointing nowhere is a clear error, not a crash.
	if err := os.WriteFile(filepath.Join(part, "LATEST"), []byte("epoch-0042\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: part, Resume: true}); err == nil || !strings.Contains(err.Error(), "epoch-0042") {
		t.Errorf("dangling LATEST: %v", err)
	}
}

// TestResumeRefusesOtherData: a checkpoint records which examples it was trained on; resuming after
// the source folder changed (here: one image added, which moves the split boundaries) is refused
// with the difference named, while the same images in another folder resume.
func TestResumeRefusesOtherData(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "img")
	if err := testimages.WriteFolder(src, 10, 30, 20); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.TrainSplit, cfg.ValSplit, cfg.Epochs = "train[:60%]", "train[60%:]", 1
	run := filepath.Join(dir, "run")
	fit := func(path string, epochs int, resume bool) error {
		d, err := OpenData(context.Background(), cfg, DataOptions{Path: path, DataDir: filepath.Join(dir, "cache")})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		c := cfg
		c.Epochs = epochs
		_, err = Fit(context.Background(), testBackend(t), c, d.Data, Options{Dir: run, Resume: resume})
		return err
	}
	if err := fit(src, 1, false); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(src, moved); err != nil {
		t.Fatal(err)
	}
	if err := fit(moved, 2, true); err != nil {
		t.Errorf("the same images in another folder: %v", err)
	}
	names, _ := filepath.Glob(filepath.Join(moved, "bright", "*"))
	raw, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(moved, "bright", "added"+filepath.Ext(names[0])), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	err = fit(moved, 3, true)
	if err == nil || !strings.Contains(err.Error(), "differs from the data it was trained on") ||
		!strings.Contains(err.Error(), "had 12 examples, now 13") {
		t.Errorf("resume after an image was added: %v", err)
	}
}

// TestDamagedLatestCheckpointNamesTheIntactOne: when the latest checkpoint is damaged, the error says
// which earlier one is intact and how to continue from it, and ResumeFrom does.
func TestDamagedLatestCheckpointNamesTheIntactOne(t *testing.T) {
	b := testBackend(t)
	dir := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig()
	cfg.Epochs = 2
	if _, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	latest, err := LatestCheckpoint(dir)
	if err != nil || filepath.Base(latest) != "epoch-0002" {
		t.Fatalf("latest %q, %v", latest, err)
	}
	if err := os.WriteFile(filepath.Join(latest, "history.json"), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 3
	_, err = Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "epoch-0001 (epoch 1) is intact") || !strings.Contains(err.Error(), "-resume-from epoch-0001") {
		t.Fatalf("resume from a damaged latest checkpoint: %v", err)
	}
	h, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir, Resume: true, ResumeFrom: "epoch-0001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Epochs) != 3 {
		t.Errorf("after resuming from epoch 1: %d epochs", len(h.Epochs))
	}
	// LATEST naming a checkpoint that is gone: the same advice.
	if err := os.WriteFile(filepath.Join(dir, "LATEST"), []byte("epoch-0009\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 4
	if _, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir, Resume: true}); err == nil || !strings.Contains(err.Error(), "is intact") {
		t.Errorf("LATEST naming a missing checkpoint: %v", err)
	}
}
