package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/internal/fileutil"
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

// trainingMeta is stored next to each checkpoint.
type trainingMeta struct {
	Config Config        `json:"config"`
	Epoch  int           `json:"epoch"` // epochs completed
	Data   *DataIdentity `json:"data,omitempty"`
}

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

// runPool keeps the runs (trainer, evaluator, store: their compiled graphs) of a comparison by
// configuration minus the seed, so that the next seed of the same model trains in the same graphs
// with its variables re-initialized: on XLA each training graph of DenseNet-121 took ~50 s to
// compile (H200), several times the training itself at the development set's size.
type runPool map[string]*run

func (p runPool) key(cfg Config) string {
	cfg.Seed, cfg.Epochs, cfg.WarmStart = 0, 0, "" // none of them changes a graph
	b, _ := json.Marshal(cfg)
	return string(b)
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
	opt, err := checkFit(b, cfg, data, opt)
	if err != nil {
		return nil, err
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

// startRun returns the run to train in (a pooled one for a new run of a configuration already
// compiled, its variables re-initialized; else a new one), with the history and the epochs done
// (resumeOrInit).
func startRun(b compute.Backend, cfg Config, data Data, opt Options, pool runPool) (*run, *History, int, error) {
	latest, err := LatestCheckpoint(opt.Dir)
	if err != nil {
		return nil, nil, 0, withIntactCheckpoint(err, opt.Dir, "")
	}
	var r *run
	if prev := pool[pool.key(cfg)]; prev != nil && opt.ResumeFrom == "" && latest == "" { // a new run: reuse, re-initialized
		r = prev
		r.opt, r.cfg = opt, cfg
	}
	store := model.NewStore()
	if r != nil {
		store = r.store
	}
	hist, start, err := resumeOrInit(store, cfg, data, opt, latest)
	if err != nil {
		return nil, nil, 0, err
	}
	reused := r != nil
	if reused {
		if err := reinitialize(store, cfg.Model); err != nil {
			return nil, nil, 0, fmt.Errorf("training: re-initializing the variables for seed %d: %w", cfg.Seed, err)
		}
	} else {
		r = newRun(b, store, cfg, opt)
		if pool != nil {
			pool[pool.key(cfg)] = r
		}
	}
	r.pool = pool
	if start == 0 && cfg.Pretrained != "" { // a new run: the pretrained backbone, after any re-initialization
		if err := models.LoadPretrainedBackbone(store, cfg.Model, cfg.Pretrained); err != nil {
			return nil, nil, 0, fmt.Errorf("training: pretrained weights: %w", err)
		}
	}
	if start == 0 && cfg.WarmStart != "" {
		if err := loadBackbone(store, cfg.Model.BackboneScope(), cfg.WarmStart); err != nil {
			return nil, nil, 0, fmt.Errorf("training: warm start: %w", err)
		}
	}
	if reused {
		// GoMLX initialises variables lazily, in a graph of its own built and compiled at the first
		// step: here, before the epoch starts, so that its cost is said once and not taken for a slow
		// training step (in a comparison on an H100, a later seed's first epoch took ~11 s more than
		// its steps' median explained, with no training graph compiled).
		t0 := time.Now()
		if err := store.InitializeVariables(b, nil); err != nil {
			return nil, nil, 0, fmt.Errorf("training: initializing the variables for seed %d: %w", cfg.Seed, err)
		}
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "variables initialized for seed %d in %.1fs (the compiled graphs of the previous seed are reused)\n", cfg.Seed, time.Since(t0).Seconds())
		}
	}
	return r, hist, start, nil
}

// checkFit validates Fit's arguments, fills in the options' defaults and creates the directories.
func checkFit(b compute.Backend, cfg Config, data Data, opt Options) (Options, error) {
	if err := cfg.Validate(); err != nil {
		return opt, fmt.Errorf("training: %w", err)
	}
	if b == nil || data.Train == nil || data.Val == nil {
		return opt, errors.New("training: backend and train/validation data are required")
	}
	if opt.Dir == "" {
		return opt, errors.New("training: an output directory is required")
	}
	if err := models.CheckMemory(cfg.Model, cfg.BatchSize); err != nil {
		return opt, fmt.Errorf("training: %w", err)
	}
	if !opt.SkipMemoryCheck {
		est, err := CheckMemory(b, cfg, data.NumTrain)
		if err != nil {
			return opt, fmt.Errorf("training: %w", err)
		}
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
		return opt, fmt.Errorf("training: %w", err)
	}
	return opt, nil
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

// reinitialize puts a store that has trained back in the state of a new one with its current seed:
// the model's variables (all created with an initializer, which reads the seed when it runs:
// internal/layers.GlorotUniform) lose their values and are initialized again at the next execution;
// GoMLX's own variables, created with a value instead, are set to a new store's values: the
// optimizer's learning rate kept (it is part of the configuration), the global step and the
// trainer's moving-average metric zeroed; the random-number state is reset from the seed.
// TestCompareReusesGraphsAcrossSeeds checks that the result trains exactly as a new store.
func reinitialize(store *model.Store, cfg models.Config) error {
	rng := model.JoinPath("/", model.RNGStateVariableName)
	modelScopes := []string{"/" + resizer.ScopeName + "/", "/" + cfg.BackboneScope() + "/"}
	for v := range store.IterVariables() {
		p := v.Path()
		switch {
		case p == rng || strings.HasSuffix(p, "/learning_rate"):
		case strings.HasPrefix(p, modelScopes[0]) || strings.HasPrefix(p, modelScopes[1]):
			if err := v.SetValue(nil); err != nil {
				return err
			}
		default:
			if err := v.SetValue(tensors.FromShape(v.Shape())); err != nil { // zeros
				return err
			}
		}
	}
	if store.GetVariable(rng) != nil {
		return store.ResetRNGState()
	}
	return nil
}

// run holds what lives across a Fit's epochs (and, in a comparison, across seeds): GoMLX's
// Trainer, the evaluator, the store, and the count of training graphs built.
type run struct {
	b                   compute.Backend
	store               *model.Store
	opt                 Options
	trainer             *train.Trainer
	trainLoss, trainAcc int // indices of the loss and accuracy among the trainer's metrics
	eval                *evaluator
	// trainGraphs counts the model function's calls while building training graphs (one per input
	// shape GoMLX compiles), so a recompilation between epochs shows up in the history.
	trainGraphs int
	frozen      bool // the backbone is frozen (Config.FreezeBackboneEpochs)
	cfg         Config
	// compiled holds the batch sizes the Trainer has training graphs for (makeRoom).
	compiled map[int]bool
	// pool holds the comparison's other runs, whose graphs makeRoom may release (nil in a Fit).
	pool runPool
}

func newRun(b compute.Backend, store *model.Store, cfg Config, opt Options) *run {
	r := &run{b: b, store: store, opt: opt, cfg: cfg, compiled: map[int]bool{},
		eval: &evaluator{backend: b, store: store, cfg: cfg, prefetch: opt.DevicePrefetch}}
	r.buildTrainer(cfg)
	return r
}

// buildTrainer makes the run's GoMLX Trainer (its graphs are built at its first step), releasing
// the previous one's graphs.
func (r *run) buildTrainer(cfg Config) {
	if r.trainer != nil {
		r.trainer.ResetComputationGraphs()
		clear(r.compiled)
	}
	modelFn := models.ModelFn(cfg.Model)
	r.trainer = train.NewTrainer(r.b, r.store, func(scope *model.Scope, images *Node) *Node {
		r.trainGraphs++
		return modelFn(scope, images)
	}, LossFn(cfg.LabelSmoothing),
		optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(cfg.LearningRate).Done(),
		[]metric.Interface{accuracyMetric()}, nil)
	r.trainLoss, r.trainAcc = metricIndex(r.trainer.TrainMetrics(), "Loss"), metricIndex(r.trainer.TrainMetrics(), "accuracy")
}

// setFrozen makes the backbone's variables (its classifier excepted) untrainable or trainable
// again, and, when that changes anything, a new Trainer: which variables get gradients is fixed when
// a training graph is built, so the change costs one compilation.
func (r *run) setFrozen(cfg Config, frozen bool) {
	if r.frozen == frozen {
		return
	}
	backbone := "/" + cfg.Model.BackboneScope() + "/"
	head := backbone + "predictions/"
	for v := range r.store.IterVariables() {
		p := v.Path()
		if strings.HasPrefix(p, backbone) && !strings.HasPrefix(p, head) && !strings.Contains(p, "moving_") {
			v.SetTrainable(!frozen)
		}
	}
	r.frozen = frozen
	r.buildTrainer(cfg)
}

// trainEpoch runs one epoch's training steps (epoch is 0-based) and returns its statistics, the
// validation ones left zero.
func (r *run) trainEpoch(ctx context.Context, epoch int, ds train.Dataset, bar *progress) (EpochStats, error) {
	stats := EpochStats{Epoch: epoch + 1}
	if s, ok := ds.(EpochSetter); ok {
		s.SetEpoch(epoch)
	}
	t0 := time.Now()
	var lossSum, accSum float64
	images := 0
	var stepTimes []time.Duration
	prevBatch := 0 // the size of the epoch's previous batch (0: none yet)
	waitStart := t0
	for batch, err := range devicePrefetch(r.b, ds.Iter(), r.opt.DevicePrefetch) {
		stats.DataWaitSeconds += time.Since(waitStart).Seconds()
		if err != nil {
			return stats, fmt.Errorf("training: reading training data: %w", err)
		}
		if err := ctx.Err(); err != nil {
			_ = batch.Finalize()
			return stats, err
		}
		n, err := batchSize(batch)
		if err != nil {
			return stats, fmt.Errorf("training: training data: %w", err)
		}
		if err := r.checkBatchSize(n, prevBatch, stats.Steps+1, epoch+1); err != nil {
			_ = batch.Finalize()
			return stats, err
		}
		prevBatch = n
		r.makeRoom(n, bar)
		graphsBefore, stepStart := r.trainGraphs, time.Now()
		m, err := r.trainer.TrainStep(batch)
		if err != nil {
			return stats, fmt.Errorf("training: step %d of epoch %d: %w", stats.Steps+1, epoch+1, err)
		}
		l, a := scalar(m[r.trainLoss]), scalar(m[r.trainAcc]) // waits for the step to finish
		d := time.Since(stepStart)
		if r.opt.OnStep != nil {
			r.opt.OnStep(d)
		}
		if r.trainGraphs != graphsBefore {
			stats.CompileSeconds += d.Seconds()
			stats.CompileSteps++
			bar.compiled(d, n)
		} else {
			stepTimes = append(stepTimes, d)
		}
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return stats, fmt.Errorf("training: loss became %v at step %d of epoch %d", l, stats.Steps+1, epoch+1)
		}
		lossSum += l * float64(n)
		accSum += a * float64(n)
		images += n
		stats.Steps++
		bar.update(stats.Steps, images, lossSum/float64(images), accSum/float64(images), false)
		waitStart = time.Now()
	}
	if images == 0 {
		return stats, errors.New("training: the training data yielded no examples")
	}
	stats.Seconds = time.Since(t0).Seconds()
	stats.Loss, stats.Accuracy = lossSum/float64(images), accSum/float64(images)
	stats.ImagesPerS = float64(images) / stats.Seconds
	stats.StepSeconds, stats.StepMedianMs = sumAndMedian(stepTimes)
	stats.TrainGraphs = r.trainGraphs
	return stats, nil
}

// checkBatchSize refuses a training batch of n examples (step of epoch, 1-based; prev: the size of
// the batch before it, 0 for the first) that does not fit Config.BatchSize: one larger, or one
// following a smaller batch (only the epoch's last batch may be smaller). Otherwise the run would
// train with the data's batch size while its configuration, the progress bar, the memory check and
// the history say another.
func (r *run) checkBatchSize(n, prev, step, epoch int) error {
	want := r.cfg.BatchSize
	size, got := n, "batch"
	switch {
	case n > want:
	case prev > 0 && prev < want:
		size, got, step = prev, "batch, not the epoch's last,", step-1
	default:
		return nil
	}
	return fmt.Errorf("training: the training data's %s at step %d of epoch %d holds %d examples, but Config.BatchSize is %d: "+
		"give Fit data in batches of Config.BatchSize (OpenData builds them so; only an epoch's last batch may be smaller), "+
		"or set Config.BatchSize (-batch) to the data's batch size", got, step, epoch, size, want)
}

// evaluator computes the validation loss and accuracy in inference mode (batch norm with its moving
// statistics), averaged over examples on the host.
//
// Not GoMLX's Trainer.EvalStep: on backends that prefer constants for variables (the pure-Go one),
// GoMLX v0.28 bakes every variable of an inference graph into the graph as a constant when the graph
// is built (model.Variable.paramNode). A cached evaluation graph would then keep evaluating the first
// epoch's weights, and its mean metrics, whose running totals are variables too, would report the
// last batch only. So the graph is stateless and, on such backends, rebuilt for each evaluation.
type evaluator struct {
	backend  compute.Backend
	store    *model.Store
	cfg      Config
	prefetch int
	exec     *model.Exec
	graphs   int // graphs built so far (the model function's calls)
}

func (e *evaluator) run(data train.Dataset) (loss, acc float64, err error) {
	if e.exec == nil || e.backend.Capabilities().PreferConstantsForVariables {
		if e.exec != nil {
			e.exec.Finalize()
		}
		modelFn := models.ModelFn(e.cfg.Model)
		e.exec, err = model.NewExec(e.backend, e.store, func(scope *model.Scope, x, labels *Node) (*Node, *Node) {
			e.graphs++
			logits := modelFn(scope, x)
			return SmoothedCrossEntropy(labels, logits, e.cfg.LabelSmoothing), Accuracy(labels, logits)
		})
		if err != nil {
			return 0, 0, fmt.Errorf("training: validation: %w", err)
		}
	}
	n := 0
	for batch, err := range devicePrefetch(e.backend, chunks(data.Iter(), EvalChunk), e.prefetch) {
		if err != nil {
			return 0, 0, fmt.Errorf("training: reading validation data: %w", err)
		}
		size, err := batchSize(batch)
		if err != nil {
			return 0, 0, fmt.Errorf("training: validation data: %w", err)
		}
		outs, err := e.exec.Exec(batch.Inputs[0], batch.Labels[0])
		_ = batch.Finalize()
		if err != nil {
			return 0, 0, fmt.Errorf("training: validation: %w", err)
		}
		loss += scalar(outs[0]) * float64(size)
		acc += scalar(outs[1]) * float64(size)
		n += size
	}
	if n == 0 {
		return 0, 0, errors.New("training: the validation data yielded no examples")
	}
	return loss / float64(n), acc / float64(n), nil
}

// sumAndMedian returns the total of ds in seconds and their median in milliseconds (0, 0 if empty).
func sumAndMedian(ds []time.Duration) (sum, medianMs float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	for _, d := range ds {
		sum += d.Seconds()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return sum, float64(m) / float64(time.Millisecond)
}

func batchSize(b train.Batch) (int, error) {
	if len(b.Inputs) != 1 || len(b.Labels) != 1 {
		_ = b.Finalize()
		return 0, fmt.Errorf("want 1 input and 1 label per batch, got %d and %d", len(b.Inputs), len(b.Labels))
	}
	return b.Inputs[0].Shape().Dimensions[0], nil
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

func metricIndex(ms []metric.Interface, name string) int {
	for i, m := range ms {
		if m.Name() == name {
			return i
		}
	}
	panic(fmt.Sprintf("training: metric %q not found", name))
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
