package training

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/internal/rundir"
)

// Checkpoint files: what is saved after each epoch, how it is read back, and the way out when the
// latest is damaged.

// trainingMeta is stored next to each checkpoint.
type trainingMeta struct {
	Config Config        `json:"config"`
	Epoch  int           `json:"epoch"` // epochs completed
	Data   *DataIdentity `json:"data,omitempty"`
}

// LatestCheckpoint returns the checkpoint directory a training run in dir would resume from
// (dir/checkpoints/epoch-NNNN named by dir/LATEST; see internal/rundir), "" if dir holds no run, or
// an error if LATEST is broken.
func LatestCheckpoint(dir string) (string, error) {
	p, err := rundir.Latest(dir)
	if err != nil {
		return "", fmt.Errorf("training: %w", err)
	}
	return p, nil
}

// readCheckpoint reads a checkpoint's metadata, variables (into store) and history.
func readCheckpoint(store *model.Store, ckpt string) (trainingMeta, *History, error) {
	meta, err := readMeta(ckpt)
	if err != nil {
		return meta, nil, err
	}
	if _, err := checkpoint.Load(store).Dir(ckpt).Immediate().Done(); err != nil {
		return meta, nil, fmt.Errorf("training: cannot read checkpoint %s: %w", ckpt, err)
	}
	h, err := LoadHistory(ckpt)
	if err != nil {
		return meta, nil, fmt.Errorf("training: checkpoint %s: %w", ckpt, err)
	}
	return meta, h, nil
}

// LoadRun reads a trained model: the latest checkpoint of the training run in dir, or the
// checkpoint folder dir itself (one holding training.json), its variables into a new store, and the
// configuration it was trained with (for onnxexport, or evaluation outside Fit).
func LoadRun(dir string) (*model.Store, Config, error) {
	ckpt := dir
	if _, err := os.Stat(filepath.Join(dir, rundir.MetaFile)); err != nil {
		latest, err := LatestCheckpoint(dir)
		if err != nil {
			return nil, Config{}, err
		}
		if latest == "" {
			return nil, Config{}, fmt.Errorf("training: %s holds no training run (no checkpoint)", dir)
		}
		ckpt = latest
	}
	store := model.NewStore()
	meta, _, err := readCheckpoint(store, ckpt)
	if err != nil {
		return nil, Config{}, err
	}
	return store, meta.Config, nil
}

// withIntactCheckpoint adds to err, the failure to read checkpoint bad (or LATEST, if bad is ""),
// the newest other checkpoint of dir that reads completely, and how to continue from it.
func withIntactCheckpoint(err error, dir, bad string) error {
	entries, _ := os.ReadDir(filepath.Join(dir, rundir.CheckpointsDir))
	for i := len(entries) - 1; i >= 0; i-- {
		name := entries[i].Name()
		path := filepath.Join(dir, rundir.CheckpointsDir, name)
		if !strings.HasPrefix(name, "epoch-") || path == bad {
			continue
		}
		scratch := model.NewStore()
		meta, _, rerr := readCheckpoint(scratch, path)
		scratch.Finalize()
		if rerr == nil {
			return fmt.Errorf("%w\nthe checkpoint %s (epoch %d) is intact: continue from it with "+
				"learnresize train -out %s -resume -resume-from %s [the run's flags] (Options.ResumeFrom in Go); the epochs after it are trained again",
				err, path, meta.Epoch, dir, name)
		}
	}
	return fmt.Errorf("%w\nno other checkpoint in %s reads completely: start the run again in a new directory", err, filepath.Join(dir, rundir.CheckpointsDir))
}

func readMeta(ckpt string) (trainingMeta, error) {
	var m trainingMeta
	b, err := os.ReadFile(filepath.Join(ckpt, rundir.MetaFile))
	if err != nil {
		return m, fmt.Errorf("training: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("training: %s: %w", filepath.Join(ckpt, rundir.MetaFile), err)
	}
	return m, nil
}

func saveCheckpoint(store *model.Store, dir string, m trainingMeta, hist *History, keep int) error {
	epochs := m.Epoch
	root := filepath.Join(dir, rundir.CheckpointsDir)
	tmp, err := os.MkdirTemp(root, ".tmp-")
	if err != nil {
		return fmt.Errorf("training: checkpoint: %w", err)
	}
	fail := func(err error) error {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("training: checkpoint: %w", err)
	}
	h, err := checkpoint.Build(store).Dir(tmp).Done()
	if err != nil {
		return fail(err)
	}
	if err := h.Save(); err != nil {
		return fail(err)
	}
	meta, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, rundir.MetaFile), meta, 0o644); err != nil {
		return fail(err)
	}
	if err := hist.Save(tmp); err != nil {
		return fail(err)
	}
	name := fmt.Sprintf("epoch-%04d", epochs)
	if err := fileutil.CommitDir(tmp, filepath.Join(root, name), true); err != nil { // GoMLX's writer does not sync
		return fail(err)
	}
	if err := fileutil.WriteAtomic(filepath.Join(dir, rundir.LatestFile), []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	// Prune: older epochs beyond keep, and temporaries of killed runs.
	entries, _ := os.ReadDir(root)
	var epochsDirs []string
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), ".tmp-"):
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		case strings.HasPrefix(e.Name(), "epoch-") && e.Name() <= name:
			epochsDirs = append(epochsDirs, e.Name())
		}
	}
	sort.Strings(epochsDirs)
	for len(epochsDirs) > keep {
		_ = os.RemoveAll(filepath.Join(root, epochsDirs[0]))
		epochsDirs = epochsDirs[1:]
	}
	return nil
}
