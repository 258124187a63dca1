package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// ComparisonRow is one model of the tutorial's table.
type ComparisonRow struct {
	Model  string `json:"model"` // e.g. "Learnable resizer + densenet121"
	Name   string `json:"name"`  // "resizer" or "baseline"
	Params int    `json:"params"`
	// FinalValAccuracy and BestValAccuracy per seed, in Seeds order.
	FinalValAccuracy []float64 `json:"final_val_accuracy"`
	BestValAccuracy  []float64 `json:"best_val_accuracy"`
	Mean             float64   `json:"mean_final_val_accuracy"`
	Std              float64   `json:"std_final_val_accuracy"` // sample standard deviation (0 for one seed)
	MeanEpochSeconds float64   `json:"mean_epoch_seconds"`
}

// Comparison is the result of Compare.
type Comparison struct {
	Config  Config          `json:"config"`
	Backend string          `json:"backend"`
	Seeds   []int64         `json:"seeds"`
	Rows    []ComparisonRow `json:"rows"`
}

// CompareOptions configures Compare: Fit's Options, where Dir receives one training directory per
// model and seed (resizer-seed42/, baseline-seed42/, ...) and comparison.md / comparison.json, and
// every other field is passed to each Fit (ResumeFrom, which names one run's checkpoint, must be empty).
type CompareOptions = Options

// Compare runs the tutorial's experiment: for each seed, train the model with the learnable resizer
// and the plain-resize baseline from the same initial backbone weights (same seed), then tabulate
// parameters and top-1 validation accuracy (final epoch; mean and spread over seeds).
func Compare(ctx context.Context, b compute.Backend, cfg Config, data Data, seeds []int64, opt CompareOptions) (*Comparison, error) {
	if len(seeds) == 0 {
		seeds = []int64{cfg.Seed}
	}
	if opt.Dir == "" {
		return nil, errors.New("training: compare: an output directory is required")
	}
	if opt.ResumeFrom != "" {
		return nil, errors.New("training: compare: ResumeFrom names one run's checkpoint: resume that run with Fit, then the comparison")
	}
	lock, err := lockDir(opt.Dir, "comparison", "training: compare")
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Unlock() }()
	cmp := &Comparison{Config: cfg, Backend: opt.BackendInfo, Seeds: seeds}
	variants := []Config{cfg, cfg}
	variants[0].Model.Resizer, variants[1].Model.Resizer = true, false
	for _, v := range variants {
		cmp.Rows = append(cmp.Rows, ComparisonRow{Model: v.Model.Title(), Name: v.Model.Name()})
	}
	if !opt.Resume {
		var runs []experimentRun
		for _, seed := range seeds {
			for _, v := range variants {
				runs = append(runs, experimentRun{filepath.Join(opt.Dir, compareRunDir(v, seed)), cfg.Epochs})
			}
		}
		if err := existingExperimentError(opt.Dir, "training: compare", "comparison", epochCount(cfg.Epochs), "a larger -epochs",
			runs, seeds); err != nil {
			return nil, err
		}
	}
	// Each model's memory is checked (and recomputing chosen) once, up front; the runs skip it.
	if variants, err = checkVariants(b, variants, data, opt, "training: compare"); err != nil {
		return nil, err
	}
	opt.SkipMemoryCheck = true
	pool := runPool{}
	for _, seed := range seeds {
		for i, v := range variants {
			v.Seed = seed
			dir := filepath.Join(opt.Dir, compareRunDir(v, seed))
			if opt.Log != nil {
				fmt.Fprintf(opt.Log, "\n== %s, seed %d -> %s\n", v.Model.Title(), seed, dir)
			}
			runOpt := opt
			runOpt.Dir = dir
			h, err := fit(ctx, b, v, data, runOpt, pool)
			if err != nil {
				return cmp, fmt.Errorf("%s, seed %d: %w", v.Model.Name(), seed, err)
			}
			cmp.Rows[i].add(h)
		}
	}
	for i := range cmp.Rows {
		cmp.Rows[i].Mean, cmp.Rows[i].Std = meanStd(cmp.Rows[i].FinalValAccuracy)
		cmp.Rows[i].MeanEpochSeconds /= float64(len(seeds))
	}
	if err := cmp.Save(opt.Dir); err != nil {
		return cmp, err
	}
	return cmp, nil
}

// compareRunDir is the folder, under a comparison's, of the run of v with seed ("resizer-seed42").
func compareRunDir(v Config, seed int64) string {
	return fmt.Sprintf("%s-seed%d", v.Model.Name(), seed)
}

// experimentRun is one training run of an experiment (Compare, WarmStart): its folder and the epochs
// it is to reach.
type experimentRun struct {
	dir    string
	epochs int
}

// existingExperimentError is the refusal, without Resume, of a directory dir that already holds runs
// of an experiment (nil when it holds none). A finished experiment (every run at its epochs and the
// table, comparison.json, written) is said to be finished, with where its table and figures are and
// how to extend it (extend: "a larger -epochs"); an unfinished one, how to continue it. prefix begins
// the errors ("training: compare"), what names the experiment ("comparison"), detail describes it
// ("2 epochs"). Both wrap ErrCheckpointExists.
func existingExperimentError(dir, prefix, what, detail, extend string, runs []experimentRun, seeds []int64) error {
	started, finished := 0, 0
	for _, r := range runs {
		latest, err := LatestCheckpoint(r.dir)
		if err == nil && latest == "" {
			continue
		}
		started++ // a broken LATEST too: -resume says which checkpoint is intact
		if err != nil {
			continue
		}
		if meta, err := readMeta(latest); err == nil && meta.Epoch >= r.epochs {
			finished++
		}
	}
	_, tableErr := os.Stat(filepath.Join(dir, "comparison.json"))
	switch {
	case started == 0:
		return nil
	case finished < len(runs) || tableErr != nil:
		return fmt.Errorf("%s: %s holds an unfinished %s (%d of %d runs finished): use -resume to continue it "+
			"or choose another directory: %w", prefix, dir, what, finished, len(runs), ErrCheckpointExists)
	}
	seedList := make([]string, len(seeds))
	for i, s := range seeds {
		seedList[i] = fmt.Sprint(s)
	}
	first, _ := filepath.Rel(dir, filepath.Join(runs[0].dir, "history.json"))
	return fmt.Errorf("%s: %s holds a finished %s (%s, seeds %s)%s; each run's history is in its folder (%s, ...): "+
		"to train for more epochs, run again with -resume and %s (Options.Resume and more epochs in the configuration in Go); "+
		"to start a new %s, choose another directory: %w", prefix, dir, what, detail, strings.Join(seedList, ", "),
		resultFiles(dir, "comparison.md", "comparison.json", "comparison.png", "curves.png", "curves.svg", "resizer_grid.png"),
		first, extend, what, ErrCheckpointExists)
}

// add appends a run's final and best validation accuracy and its mean epoch time (summed over seeds:
// the caller divides) to the row.
func (r *ComparisonRow) add(h *History) {
	r.Params = h.Params
	r.FinalValAccuracy = append(r.FinalValAccuracy, h.Last().ValAccuracy)
	r.BestValAccuracy = append(r.BestValAccuracy, h.BestValAccuracy())
	secs := 0.0
	for _, e := range h.Epochs {
		secs += e.Seconds
	}
	r.MeanEpochSeconds += secs / float64(len(h.Epochs))
}

func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)-1))
}

// Markdown renders the tutorial's table: model, parameters in millions (6 decimals), top-1 accuracy.
func (c *Comparison) Markdown() string {
	var b strings.Builder
	multi := len(c.Seeds) > 1
	if multi {
		fmt.Fprintf(&b, "| Model | Number of parameters (Million) | Top-1 accuracy, mean ± std over %d seeds | Best epoch, mean |\n|---|---|---|---|\n", len(c.Seeds))
	} else {
		b.WriteString("| Model | Number of parameters (Million) | Top-1 accuracy |\n|---|---|---|\n")
	}
	for _, r := range c.Rows {
		if multi {
			best, _ := meanStd(r.BestValAccuracy)
			fmt.Fprintf(&b, "| %s | %.6f | %.2f%% ± %.2f | %.2f%% |\n", r.Model, float64(r.Params)/1e6, 100*r.Mean, 100*r.Std, 100*best)
		} else {
			fmt.Fprintf(&b, "| %s | %.6f | %.2f%% |\n", r.Model, float64(r.Params)/1e6, 100*r.Mean)
		}
	}
	run := c.Backend // the one-line report, "backend go [go:ops_sequential] on CPU, ..."
	if run == "" {
		run = "backend not recorded"
	}
	fmt.Fprintf(&b, "\nSeeds %v; %d epochs, batch %d, %dx%d -> %dx%d %s; %s.\n", c.Seeds, c.Config.Epochs,
		c.Config.BatchSize, c.Config.Model.InputHeight, c.Config.Model.InputWidth, c.Config.Model.TargetHeight,
		c.Config.Model.TargetWidth, c.Config.Model.Interpolation, run)
	return b.String()
}

// LoadComparison reads the comparison.json that Save wrote into dir (a finished `compare`, such as
// the GPU results committed under docs/gpu-runs/), so that its table and figures can be shown again
// without training: the notebook shows the committed GPU comparison this way.
func LoadComparison(dir string) (*Comparison, error) {
	path := filepath.Join(dir, "comparison.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("training: %w (a finished comparison's folder holds it: run compare first)", err)
	}
	c := &Comparison{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("training: %s: %w", path, err)
	}
	if len(c.Rows) == 0 || len(c.Seeds) == 0 {
		return nil, fmt.Errorf("training: %s holds no rows or no seeds: not a comparison written by compare", path)
	}
	return c, nil
}

// Save writes comparison.md and comparison.json into dir, atomically.
func (c *Comparison) Save(dir string) error {
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := fileutil.WriteAtomic(filepath.Join(dir, "comparison.json"), js, 0o644); err != nil {
		return err
	}
	return fileutil.WriteAtomic(filepath.Join(dir, "comparison.md"), []byte(c.Markdown()), 0o644)
}
