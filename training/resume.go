package training

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/internal/rundir"
)

// Resuming: which checkpoint a run continues from, and the checks that it is the same run on the
// same data.

// DataIdentity is the identity of a run's training and validation splits.
type DataIdentity struct {
	Train datasets.SplitIdentity `json:"train"`
	Val   datasets.SplitIdentity `json:"validation"`
}

// changedFrom says how the data differs from the checkpoint's, or "" if it does not.
func (d *DataIdentity) changedFrom(old *DataIdentity) string {
	if d == nil || old == nil {
		return ""
	}
	var diffs []string
	for _, p := range []struct {
		name     string
		now, was datasets.SplitIdentity
	}{{"training", d.Train, old.Train}, {"validation", d.Val, old.Val}} {
		switch {
		case p.now.Split != p.was.Split:
			diffs = append(diffs, fmt.Sprintf("the %s split was %q, now %q", p.name, p.was.Split, p.now.Split))
		case p.now.Examples != p.was.Examples:
			diffs = append(diffs, fmt.Sprintf("the %s split %s had %d examples, now %d", p.name, p.now.Split, p.was.Examples, p.now.Examples))
		case p.now.Digest != p.was.Digest:
			diffs = append(diffs, fmt.Sprintf("the %s split %s has as many examples (%d) but not the same ones or the same pixels", p.name, p.now.Split, p.now.Examples))
		}
	}
	return strings.Join(diffs, "; ")
}

// resumeOrInit loads the checkpoint to continue from (with Resume: opt.ResumeFrom, else latest, the
// run's LATEST checkpoint) into store and returns its history and the number of epochs done, or
// seeds a new run.
func resumeOrInit(store *model.Store, cfg Config, data Data, opt Options, latest string) (*History, int, error) {
	hist := &History{Config: cfg, Backend: opt.BackendInfo}
	if opt.ResumeFrom != "" {
		if !opt.Resume {
			return nil, 0, errors.New("training: ResumeFrom needs Resume")
		}
		latest = opt.ResumeFrom
		if !filepath.IsAbs(latest) && !strings.Contains(latest, string(filepath.Separator)) {
			latest = filepath.Join(opt.Dir, rundir.CheckpointsDir, latest)
		}
	}
	switch {
	case latest == "":
		store.SetParam(model.ParamInitialSeed, cfg.Seed)
		return hist, 0, nil
	case !opt.Resume:
		return nil, 0, existingRunError(opt.Dir, latest, cfg.Epochs)
	}
	meta, h, err := readCheckpoint(store, latest)
	if err != nil {
		return nil, 0, withIntactCheckpoint(err, opt.Dir, latest)
	}
	if err := cfg.compatible(meta.Config); err != nil {
		return nil, 0, fmt.Errorf("training: cannot resume %s: %w", latest, err)
	}
	if diff := data.Identity.changedFrom(meta.Data); diff != "" {
		return nil, 0, fmt.Errorf("training: cannot resume %s: the data differs from the data it was trained on: %s "+
			"(images added, removed, renamed or edited in the source?): resume with the same data, or start a new run in another directory",
			latest, diff)
	}
	hist.Epochs, hist.Params = h.Epochs, h.Params
	if opt.Log != nil {
		fmt.Fprintf(opt.Log, "Resuming from %s (%d of %d epochs done)\n", latest, meta.Epoch, cfg.Epochs)
	}
	return hist, meta.Epoch, nil
}

// existingRunError is Fit's refusal, without Resume, of a directory holding a run (latest, its
// checkpoint): a run with all of epochs done is said to be finished, with where its results are and
// how to extend it; another, how to continue it. Both wrap ErrCheckpointExists.
func existingRunError(dir, latest string, epochs int) error {
	meta, err := readMeta(latest)
	if err != nil || meta.Epoch < epochs {
		done := ""
		if err == nil {
			done = fmt.Sprintf(", %d of %d epochs done", meta.Epoch, epochs)
		}
		return fmt.Errorf("training: %s (%s%s): use -resume to continue it or choose another directory: %w",
			dir, latest, done, ErrCheckpointExists)
	}
	return fmt.Errorf("training: %s holds a finished run (%s)%s: to train it for more epochs, run again with -resume "+
		"and -epochs above %d (Options.Resume and a larger Config.Epochs in Go); to start a new run, choose another directory: %w",
		dir, epochCount(meta.Epoch), resultFiles(dir, "history.json", "history.csv", "curves.png", "curves.svg", "resizer_grid.png"),
		meta.Epoch, ErrCheckpointExists)
}

// epochCount is "1 epoch" or "n epochs".
func epochCount(n int) string {
	if n == 1 {
		return "1 epoch"
	}
	return fmt.Sprintf("%d epochs", n)
}

// resultFiles says which of names dir holds ("; results in DIR: a, b"), "" if none.
func resultFiles(dir string, names ...string) string {
	var found []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		return ""
	}
	return fmt.Sprintf("; results in %s: %s", dir, strings.Join(found, ", "))
}
