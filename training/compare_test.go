package training

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareTable(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Epochs = 1
	dir := t.TempDir()
	cmp, err := Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Rows) != 2 || cmp.Rows[0].Name != "resizer" || cmp.Rows[1].Name != "baseline" {
		t.Fatalf("rows %+v", cmp.Rows)
	}
	// The resizer adds exactly its own parameters (4 filters, 1 block) to the same backbone.
	resizerParams := (7*7*3*4 + 4) + (4*4 + 4) + 4*4 + 2*(3*3*4*4) + 2*4*4 + 3*3*4*4 + 4*4 + (7*7*4*3 + 3)
	if d := cmp.Rows[0].Params - cmp.Rows[1].Params; d != resizerParams {
		t.Errorf("parameter difference %d, want the resizer's %d", d, resizerParams)
	}
	for _, r := range cmp.Rows {
		if len(r.FinalValAccuracy) != 2 || r.Mean < 0 || r.Mean > 1 {
			t.Errorf("row %+v", r)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	if err != nil || !strings.Contains(string(md), "| Learnable resizer + DenseNet (blocks 2, 2) |") || !strings.Contains(string(md), "± ") {
		t.Errorf("comparison.md: %v\n%s", err, md)
	}
	back, err := LoadComparison(dir)
	if err != nil || len(back.Rows) != 2 || back.Config.Model.Interpolation != cfg.Model.Interpolation ||
		back.Markdown() != cmp.Markdown() {
		t.Errorf("comparison.json: %v %+v", err, back)
	}
	for _, sub := range []string{"resizer-seed3", "baseline-seed3", "resizer-seed4", "baseline-seed4"} {
		if _, err := os.Stat(filepath.Join(dir, sub, "history.json")); err != nil {
			t.Error(err)
		}
	}
	// Running the finished comparison again without Resume: refused, saying it is finished, where its
	// table is and how to extend it; with a run missing, that it is unfinished and how to continue.
	_, err = Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir})
	if !errors.Is(err, ErrCheckpointExists) {
		t.Errorf("re-run of a finished comparison: %v, want ErrCheckpointExists", err)
	} else {
		for _, want := range []string{"holds a finished comparison (1 epoch, seeds 3, 4)", "comparison.md, comparison.json",
			filepath.Join("resizer-seed3", "history.json"), "-resume and a larger -epochs"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("re-run of a finished comparison: %q lacks %q", err, want)
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "baseline-seed4")); err != nil {
		t.Fatal(err)
	}
	_, err = Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir})
	if !errors.Is(err, ErrCheckpointExists) || !strings.Contains(err.Error(), "unfinished comparison (3 of 4 runs finished): use -resume") {
		t.Errorf("re-run of an unfinished comparison: %v", err)
	}
}

// TestLoadComparisonErrors: a folder without a comparison, or a JSON file that is not one, is refused
// naming the file.
func TestLoadComparisonErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadComparison(dir); err == nil || !strings.Contains(err.Error(), "comparison.json") || !strings.Contains(err.Error(), "run compare first") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comparison.json"), []byte(`{"epochs": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadComparison(dir); err == nil || !strings.Contains(err.Error(), "not a comparison") {
		t.Errorf("no rows: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comparison.json"), []byte(`{"rows": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadComparison(dir); err == nil || !strings.Contains(err.Error(), "comparison.json") {
		t.Errorf("truncated: %v", err)
	}
}

// TestCommittedGPUComparison: the GPU comparison committed under docs/gpu-runs (shown by the notebook's
// last section and docs/RESULTS.md) loads, and its table agrees with the histories beside it.
func TestCommittedGPUComparison(t *testing.T) {
	dir := filepath.Join("..", "docs", "gpu-runs", "2026-11-26-h100", "compare")
	cmp, err := LoadComparison(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Rows) != 2 || len(cmp.Seeds) != 3 || cmp.Config.Epochs != 5 || cmp.Config.BatchSize != 64 {
		t.Fatalf("comparison: %d rows, seeds %v, %d epochs, batch %d", len(cmp.Rows), cmp.Seeds, cmp.Config.Epochs, cmp.Config.BatchSize)
	}
	for _, row := range cmp.Rows {
		for i, seed := range cmp.Seeds {
			h, err := LoadHistory(filepath.Join(dir, fmt.Sprintf("%s-seed%d", row.Name, seed)))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Epochs) != cmp.Config.Epochs || h.Last().ValAccuracy != row.FinalValAccuracy[i] {
				t.Errorf("%s seed %d: %d epochs, final val accuracy %v; the table says %v", row.Name, seed, len(h.Epochs), h.Last().ValAccuracy, row.FinalValAccuracy[i])
			}
		}
	}
}
