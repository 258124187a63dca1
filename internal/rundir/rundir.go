// Package rundir knows the layout of a training run's folder, so that the packages that write runs
// (training) and those that read trained models from them (resizer) agree on it:
//
//	RUN/LATEST                      the name of the newest complete checkpoint, e.g. "epoch-0002"
//	RUN/checkpoints/epoch-NNNN/     GoMLX checkpoints (plus training.json and the history)
package rundir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	// LatestFile names the newest complete checkpoint; it is written last, atomically.
	LatestFile = "LATEST"
	// CheckpointsDir holds the epoch checkpoints.
	CheckpointsDir = "checkpoints"
	// MetaFile is in every complete checkpoint (training's configuration and epoch).
	MetaFile = "training.json"
)

// Latest returns the checkpoint directory that dir's LATEST names, "" if dir is not a run (no
// LATEST), or an error if LATEST is broken (it names no complete checkpoint).
func Latest(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, LatestFile))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, "/\\") {
		return "", fmt.Errorf("%s names %q, not a checkpoint", filepath.Join(dir, LatestFile), name)
	}
	p := filepath.Join(dir, CheckpointsDir, name)
	if _, err := os.Stat(filepath.Join(p, MetaFile)); err != nil {
		return "", fmt.Errorf("%s names %s, which is unreadable: %w", filepath.Join(dir, LatestFile), name, err)
	}
	return p, nil
}

// InputSize is the size of the images a checkpoint's model was trained on (the tutorial's INP_SIZE),
// as its MetaFile records it (training's configuration, model.InputHeight and InputWidth); 0, 0 when
// the checkpoint has no readable MetaFile (one written by resizer's Model.Save, for instance).
func InputSize(checkpoint string) (height, width int) {
	raw, err := os.ReadFile(filepath.Join(checkpoint, MetaFile))
	if err != nil {
		return 0, 0
	}
	var meta struct {
		Config struct {
			Model struct{ InputHeight, InputWidth int } `json:"model"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &meta) != nil || meta.Config.Model.InputHeight <= 0 || meta.Config.Model.InputWidth <= 0 {
		return 0, 0
	}
	return meta.Config.Model.InputHeight, meta.Config.Model.InputWidth
}
