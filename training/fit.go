package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/internal/ortlib"
	"github.com/learnresize/learnresize/internal/platform"
	"github.com/learnresize/learnresize/internal/rundir"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
)

// Data is what Fit trains and validates on: GoMLX datasets whose batches have one input, the
// images [batch, height, width, 3] (uint8 or float, pixel values 0..255), and one label, one-hot
// float32 [batch, classes]. Training batches hold Config.BatchSize examples, except an epoch's last,
// which may hold fewer (Fit refuses others).
type Data struct {
	Train, Val train.Dataset
	// NumTrain is the number of training examples (for the progress bar; 0 if unknown).
	NumTrain int
	// Identity says which examples Train and Val hold (OpenData sets it). Checkpoints record it and
	// a resume on data with another identity is refused; nil skips the check.
	Identity *DataIdentity
}

// EpochSetter is implemented by datasets whose order depends on the epoch (seed + epoch): Fit calls
// SetEpoch(e) before epoch e (0-based), so a resumed run sees the same data order as an
// uninterrupted one.
type EpochSetter interface{ SetEpoch(epoch int) }

// Options of a training run beyond the configuration.
type Options struct {
	// Dir receives checkpoints (checkpoints/epoch-NNNN, LATEST) and history.json/history.csv.
	Dir string
	// Resume continues from the latest checkpoint in Dir. Without it, a Dir that already holds a
	// checkpoint is an error (nothing is overwritten).
	Resume bool
	// Log receives the progress bar and the per-epoch lines (nil: silent).
	Log io.Writer
	// Interactive redraws the progress bar in place (\r); otherwise a line every 10 s.
	Interactive bool
	// BackendInfo is recorded in the history.
	BackendInfo string
	// OnEpoch, if set, is called after each epoch's checkpoint is written.
	OnEpoch func(h *History)
	// ResumeFrom, with Resume, continues from this checkpoint (a name under Dir/checkpoints such as
	// "epoch-0001", or a path) instead of the latest: the way back when the latest is damaged.
	ResumeFrom string
	// OnStep, if set, is called after each training step with its duration (compilation included),
	// e.g. so that an interrupt handler can say how long the step in progress may take.
	OnStep func(d time.Duration)
	// KeepCheckpoints is how many epoch checkpoints to keep (default 2).
	KeepCheckpoints int
	// SkipMemoryCheck skips CheckMemory, the up-front refusal of a training step its estimate says
	// cannot fit in this machine's memory (the command line checks before it reads the data, then
	// sets this).
	SkipMemoryCheck bool
	// DevicePrefetch is how many batches are read and copied to the device ahead of the step that
	// uses them, in a background goroutine (0: DefaultDevicePrefetch; negative: none, each batch is
	// read and copied inside the step loop).
	DevicePrefetch int
}

// LockFile is the file in a run directory (and a comparison's) that a running process holds locked.
const LockFile = ".lock"

// ErrCheckpointExists is returned when Dir already has a checkpoint and Resume is false.
var ErrCheckpointExists = errors.New("output directory already holds a checkpoint")

// Fit trains cfg.Model on data for cfg.Epochs epochs (continuing a checkpoint with Resume) and
// returns the history. It checkpoints after every epoch; a run killed at any moment loses at most the
// epoch in progress, and never leaves a checkpoint that cannot be read.
//
// Why not GoMLX's train.Loop: the tutorial's model.fit semantics need what Loop does not give here:
// validation in inference mode after every epoch with results averaged per example (evaluator),
// an epoch-seeded data order so that a resumed run sees the batches an uninterrupted one would,
// checkpoints that carry the configuration and the data's identity, and per-epoch step, compile and
// data-wait times. It still uses GoMLX's Trainer for the step itself.
func Fit(ctx context.Context, b compute.Backend, cfg Config, data Data, opt Options) (*History, error) {
	return fit(ctx, b, cfg, data, opt, nil)
}

// lockDir creates dir and takes its LockFile for this process's training run or experiment (what
// names it to a process that tries next, e.g. "training run"). One per directory: two would
// interleave checkpoints and histories, and one's results would be lost. The lock goes with the
// process, however it ends. Errors begin with prefix ("training", "training: compare", ...).
func lockDir(dir, what, prefix string) (*fileutil.Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	lock, err := fileutil.TryLock(filepath.Join(dir, LockFile), what+" "+dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: wait for it to finish or choose another output directory", prefix, err)
	}
	return lock, nil
}

// fit is Fit, reusing a run of pool (when not nil) for a new run of an already-seen configuration.
func fit(ctx context.Context, b compute.Backend, cfg Config, data Data, opt Options, pool runPool) (*History, error) {
	cfg, opt, err := checkFit(b, cfg, data, opt)
	if err != nil {
		return nil, err
	}
	if lb, err := RunsOn(b, cfg); err != nil {
		return nil, err
	} else if lb != b {
		if opt.Log != nil {
			fmt.Fprintln(opt.Log, "Training on ONNX Runtime without buffer sharing (lean: less memory, more time)")
		}
		b = lb
	}
	lock, err := lockDir(opt.Dir, "training run", "training")
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Unlock() }()

	r, hist, start, err := startRun(b, cfg, data, opt, pool)
	if err != nil {
		return nil, err
	}
	defer r.heap.Release()
	for epoch := start; epoch < cfg.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return hist, err
		}
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "Epoch %d/%d\n", epoch+1, cfg.Epochs)
		}
		steps := 0
		if data.NumTrain > 0 {
			steps = (data.NumTrain + cfg.BatchSize - 1) / cfg.BatchSize
		}
		bar := newProgress(opt.Log, steps, opt.Interactive)
		r.setFrozen(cfg, epoch < cfg.FreezeBackboneEpochs)
		stats, err := r.trainEpoch(ctx, epoch, data.Train, bar)
		if err != nil {
			return hist, err
		}
		t1 := time.Now()
		if stats.ValLoss, stats.ValAccuracy, err = r.eval.run(data.Val); err != nil {
			return hist, err
		}
		stats.ValSeconds, stats.ValGraphs = time.Since(t1).Seconds(), r.eval.graphs
		bar.done(stats)
		hist.Epochs = append(hist.Epochs, stats)
		hist.Params = countParams(r.store, cfg.Model)
		if err := saveCheckpoint(r.store, opt.Dir, trainingMeta{Config: cfg, Epoch: epoch + 1, Data: data.Identity}, hist, opt.KeepCheckpoints); err != nil {
			return hist, err
		}
		if err := hist.Save(opt.Dir); err != nil {
			return hist, err
		}
		if opt.OnEpoch != nil {
			opt.OnEpoch(hist)
		}
	}
	return hist, nil
}

// RunsOn is the backend a run of cfg trains and evaluates on: b, or ONNX Runtime's lean
// configuration (ortlib.Lean) where cfg.Lean asks for it and b is ONNX Runtime.
func RunsOn(b compute.Backend, cfg Config) (compute.Backend, error) {
	if !cfg.Lean || platform.Of(b) != platform.ONNX {
		return b, nil
	}
	lb, err := ortlib.Lean()
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	return lb, nil
}

// checkFit validates Fit's arguments, fills in the options' defaults and creates the directories.
// It returns the configuration to train: cfg, with Recompute and Lean on where the memory check
// chose them.
func checkFit(b compute.Backend, cfg Config, data Data, opt Options) (Config, Options, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, opt, fmt.Errorf("training: %w", err)
	}
	if b == nil || data.Train == nil || data.Val == nil {
		return cfg, opt, errors.New("training: backend and train/validation data are required")
	}
	if opt.Dir == "" {
		return cfg, opt, errors.New("training: an output directory is required")
	}
	if err := models.CheckMemory(cfg.Model, cfg.BatchSize); err != nil {
		return cfg, opt, fmt.Errorf("training: %w", err)
	}
	if !opt.SkipMemoryCheck {
		est, err := CheckMemory(b, cfg, data.NumTrain)
		if err != nil {
			return cfg, opt, fmt.Errorf("training: %w", err)
		}
		cfg = est.Apply(cfg)
		if opt.Log != nil && est.Process > 0 {
			fmt.Fprintf(opt.Log, "Memory: %s\n", est)
		}
	}
	if opt.KeepCheckpoints <= 0 {
		opt.KeepCheckpoints = 2
	}
	if opt.DevicePrefetch == 0 {
		opt.DevicePrefetch = DefaultDevicePrefetch
	}
	if err := os.MkdirAll(filepath.Join(opt.Dir, rundir.CheckpointsDir), 0o755); err != nil {
		return cfg, opt, fmt.Errorf("training: %w", err)
	}
	return cfg, opt, nil
}

// countParams counts the model's parameters as Keras does (including batch-norm moving statistics,
// excluding optimizer and metric state).
func countParams(store *model.Store, cfg models.Config) int {
	n := 0
	for v := range store.IterVariables() {
		p := v.Path()
		if strings.HasPrefix(p, "/"+resizer.ScopeName+"/") || strings.HasPrefix(p, "/"+cfg.BackboneScope()+"/") {
			n += v.Shape().Size()
		}
	}
	return n
}

// ---- Checkpoints: checkpoints/epoch-NNNN/ written under a temporary name, renamed, then LATEST. ----
