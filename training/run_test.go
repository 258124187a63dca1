package training

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/learnresize/learnresize/internal/backendtest"
)

// TestReinitializeKeepsTheLearningRate pins what reinitialize relies on: GoMLX's SGD keeps its
// learning rate in one variable whose path ends in "/learning_rate", which a reused run must keep
// (zeroed, the next seed would not train). If GoMLX renames it, this fails before a comparison's
// later seeds silently stop learning.
func TestReinitializeKeepsTheLearningRate(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, cfg.Seed)
	r := newRun(b, store, cfg, Options{})
	if _, err := r.trainEpoch(context.Background(), 0, newMemData(16, 40, 8, 1), newProgress(nil, 0, false)); err != nil {
		t.Fatal(err)
	}
	lr := func() (paths []string, values []float64) {
		for v := range store.IterVariables() {
			if strings.HasSuffix(v.Path(), "/learning_rate") {
				val, err := v.Value()
				if err != nil {
					t.Fatal(err)
				}
				paths, values = append(paths, v.Path()), append(values, scalar(val))
			}
		}
		return paths, values
	}
	paths, values := lr()
	if len(paths) != 1 || float32(values[0]) != float32(cfg.LearningRate) {
		t.Fatalf("variables ending in /learning_rate after a step: %v = %v; want one, %v: reinitialize (run.go) "+
			"must learn the optimizer's new variable name", paths, values, cfg.LearningRate)
	}
	if err := reinitialize(store, cfg.Model); err != nil {
		t.Fatal(err)
	}
	if _, after := lr(); len(after) != 1 || after[0] != values[0] {
		t.Errorf("learning rate after reinitialize: %v, want %v", after, cfg.LearningRate)
	}
}

// TestCompareReusesGraphsAcrossSeeds: the second seed of a comparison trains in the graphs the first
// compiled (no compilation in its first epoch), with variables re-initialized for its seed, so its
// history equals that of a fresh run with that seed (within backendtest.RunToRun).
func TestCompareReusesGraphsAcrossSeeds(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Epochs = 2
	dir := t.TempDir()
	if _, err := Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"resizer", "baseline"} {
		reused, err := LoadHistory(filepath.Join(dir, name+"-seed4"))
		if err != nil {
			t.Fatal(err)
		}
		if e := reused.Epochs[0]; e.CompileSteps != 0 {
			t.Errorf("%s, seed 4: %d compiling steps in epoch 1, want 0 (the graphs of seed 3)", name, e.CompileSteps)
		}
		c := cfg
		c.Seed = 4
		c.Model.Resizer = name == "resizer"
		fresh, err := Fit(context.Background(), b, c, tinyData(), Options{Dir: filepath.Join(t.TempDir(), "fresh")})
		if err != nil {
			t.Fatal(err)
		}
		for i := range fresh.Epochs {
			f, r := fresh.Epochs[i], reused.Epochs[i]
			if !backendtest.Close(b, r.Loss, f.Loss) || !backendtest.Close(b, r.Accuracy, f.Accuracy) ||
				!backendtest.Close(b, r.ValLoss, f.ValLoss) || !backendtest.Close(b, r.ValAccuracy, f.ValAccuracy) {
				t.Errorf("%s, seed 4, epoch %d: reused graphs loss %v acc %v val %v/%v; a fresh run %v %v %v/%v",
					name, i+1, r.Loss, r.Accuracy, r.ValLoss, r.ValAccuracy, f.Loss, f.Accuracy, f.ValLoss, f.ValAccuracy)
			}
		}
	}
}
