package training

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/learnresize/learnresize/internal/rundir"
	"github.com/learnresize/learnresize/internal/torchfile"
)

// WarmStartOptions configures WarmStart: Fit's Options, where Dir receives the runs (finetune-seedN/,
// baseline-seedN/, resizer-seedN/) and comparison.md / comparison.json, and FinetuneEpochs, the
// epochs of the first stage (default: the configuration's Epochs).
type WarmStartOptions struct {
	Options
	FinetuneEpochs int
}

// Names of WarmStart's first two rows (ComparisonRow.Name); the other two are the models' names,
// "baseline" and "resizer". Runs are in "<name>-seed<seed>" folders (lowres has none).
const (
	WarmFinetune = "finetune" // the backbone fine-tuned at the high resolution
	WarmLowRes   = "lowres"   // the same weights evaluated at the low resolution, without training
)

// WarmStart runs the warm-start experiment of Talebi & Milanfar (the tutorial's closing remark): how
// much of a network's accuracy at a resolution it was trained for survives a smaller input, and how
// much a learnable resizer trained in front of it wins back. For each seed:
//
//  1. finetune: the backbone (cfg.Pretrained, e.g. torchvision's ImageNet DenseNet-121, or from
//     scratch without it) is trained for FinetuneEpochs on images at cfg's input size, fed to it
//     unresized (input = target);
//  2. lowres: those weights are evaluated on the same validation images resized to cfg's target
//     size with cfg's plain interpolation (no training at that size);
//  3. baseline and resizer: the plain resize and the learnable resizer to the target size, each in
//     front of a copy of stage 1's network (warm start: classifier and batch-norm statistics
//     included), trained for cfg.Epochs; baseline is the control for the extra training.
//
// The result is a Comparison with the four rows in that order (row lowres has one evaluation per
// seed, its best equals its final accuracy). cfg.Model.Resizer is ignored; cfg.FreezeBackboneEpochs
// applies to stage 1. Interrupted runs continue with opt.Resume.
// (One piece: the experiment's stages per seed in the order listed above, each a call.)
func WarmStart(ctx context.Context, b compute.Backend, cfg Config, data Data, seeds []int64, opt WarmStartOptions) (*Comparison, error) {
	if len(seeds) == 0 {
		seeds = []int64{cfg.Seed}
	}
	if opt.Dir == "" {
		return nil, errors.New("training: warm start: an output directory is required")
	}
	if opt.ResumeFrom != "" {
		return nil, errors.New("training: warm start: ResumeFrom names one run's checkpoint: resume that run with Fit")
	}
	if cfg.WarmStart != "" {
		return nil, errors.New("training: warm start: the configuration already starts from another run (WarmStart)")
	}
	if opt.FinetuneEpochs == 0 {
		opt.FinetuneEpochs = cfg.Epochs
	}
	m := cfg.Model
	if m.TargetHeight >= m.InputHeight && m.TargetWidth >= m.InputWidth {
		return nil, fmt.Errorf("training: warm start: the low resolution %dx%d must be smaller than the input %dx%d",
			m.TargetHeight, m.TargetWidth, m.InputHeight, m.InputWidth)
	}
	stages := warmStages(cfg, opt.FinetuneEpochs)
	for _, s := range stages {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("training: warm start: %w", err)
		}
	}
	lock, err := lockDir(opt.Dir, "warm-start experiment", "training: warm start")
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Unlock() }()

	if !opt.Resume {
		var runs []experimentRun
		for _, seed := range seeds {
			runs = append(runs, experimentRun{filepath.Join(opt.Dir, fmt.Sprintf("%s-seed%d", WarmFinetune, seed)), opt.FinetuneEpochs})
			for _, stage := range stages[2:] {
				runs = append(runs, experimentRun{filepath.Join(opt.Dir, fmt.Sprintf("%s-seed%d", stage.Model.Name(), seed)), cfg.Epochs})
			}
		}
		detail := fmt.Sprintf("%s of fine-tuning, %s warm-started", epochCount(opt.FinetuneEpochs), epochCount(cfg.Epochs))
		if err := existingExperimentError(opt.Dir, "training: warm start", "warm-start experiment", detail,
			"a larger -epochs or -finetune-epochs", runs, seeds); err != nil {
			return nil, err
		}
	}
	// Each training stage's memory is checked (and recomputing chosen) once, up front; the runs skip it.
	trained, err := checkVariants(b, []Config{stages[0], stages[2], stages[3]}, data, opt.Options, "training: warm start")
	if err != nil {
		return nil, err
	}
	stages[0], stages[2], stages[3] = trained[0], trained[1], trained[2]
	opt.SkipMemoryCheck = true
	hi, lo := fmt.Sprintf("%dx%d", m.InputHeight, m.InputWidth), fmt.Sprintf("%dx%d", m.TargetHeight, m.TargetWidth)
	backbone := m.Backbone()
	cmp := &Comparison{Config: cfg, Backend: opt.BackendInfo, Seeds: seeds, Rows: []ComparisonRow{
		{Model: fmt.Sprintf("%s fine-tuned at %s", backbone, hi), Name: WarmFinetune},
		{Model: fmt.Sprintf("same weights at %s (%s resize, no training)", lo, m.Interpolation), Name: WarmLowRes},
		{Model: fmt.Sprintf("%s resize %s -> %s + %s, warm-started", m.Interpolation, hi, lo, backbone), Name: stages[2].Model.Name()},
		{Model: fmt.Sprintf("Learnable resizer %s -> %s + %s, warm-started", hi, lo, backbone), Name: stages[3].Model.Name()},
	}}
	pool := runPool{}
	for _, seed := range seeds {
		finetuneDir := filepath.Join(opt.Dir, fmt.Sprintf("%s-seed%d", WarmFinetune, seed))
		h, err := warmRun(ctx, b, stages[0], seed, data, opt.Options, finetuneDir, pool)
		if err != nil {
			return cmp, err
		}
		cmp.Rows[0].add(h)
		loss, acc, err := evaluateAt(b, stages[1], finetuneDir, data, opt.DevicePrefetch)
		if err != nil {
			return cmp, fmt.Errorf("%s, seed %d: %w", WarmLowRes, seed, err)
		}
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "\n== %s, seed %d: val_accuracy %.4f, val_loss %.4f\n", cmp.Rows[1].Model, seed, acc, loss)
		}
		cmp.Rows[1].Params = h.Params
		cmp.Rows[1].FinalValAccuracy = append(cmp.Rows[1].FinalValAccuracy, acc)
		cmp.Rows[1].BestValAccuracy = append(cmp.Rows[1].BestValAccuracy, acc)
		for i, stage := range stages[2:] {
			stage.WarmStart = finetuneDir
			h, err := warmRun(ctx, b, stage, seed, data, opt.Options, filepath.Join(opt.Dir, fmt.Sprintf("%s-seed%d", stage.Model.Name(), seed)), pool)
			if err != nil {
				return cmp, err
			}
			cmp.Rows[2+i].add(h)
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

// warmStages returns the configurations of WarmStart's stages: finetune (input = target = the high
// resolution, baseline model), lowres (the same network behind a plain resize to the low resolution),
// baseline and resizer at the low resolution (their WarmStart is set per seed).
func warmStages(cfg Config, finetuneEpochs int) [4]Config {
	var s [4]Config
	s[0] = cfg
	s[0].Model.Resizer = false
	s[0].Model.TargetHeight, s[0].Model.TargetWidth = cfg.Model.InputHeight, cfg.Model.InputWidth
	s[0].Epochs = finetuneEpochs
	low := cfg
	low.Pretrained, low.FreezeBackboneEpochs = "", 0 // the backbone comes from stage 1
	s[1], s[2], s[3] = low, low, low
	s[1].Model.Resizer, s[2].Model.Resizer, s[3].Model.Resizer = false, false, true
	return s
}

// warmRun is one of WarmStart's training runs, logged as Compare logs its runs.
func warmRun(ctx context.Context, b compute.Backend, cfg Config, seed int64, data Data, opt Options, dir string, pool runPool) (*History, error) {
	cfg.Seed = seed
	if opt.Log != nil {
		fmt.Fprintf(opt.Log, "\n== %s, %dx%d -> %dx%d, seed %d -> %s\n", cfg.Model.Title(), cfg.Model.InputHeight, cfg.Model.InputWidth,
			cfg.Model.TargetHeight, cfg.Model.TargetWidth, seed, dir)
	}
	opt.Dir = dir
	h, err := fit(ctx, b, cfg, data, opt, pool)
	if err != nil {
		return nil, fmt.Errorf("%s, seed %d: %w", filepath.Base(dir), seed, err)
	}
	return h, nil
}

// evaluateAt evaluates the latest checkpoint of run in inference mode on the validation data through
// cfg's model, which may differ from the run's in everything that has no variables (here: a plain
// resize to a lower resolution in front of the same network).
func evaluateAt(b compute.Backend, cfg Config, run string, data Data, prefetch int) (loss, acc float64, err error) {
	ckpt, err := LatestCheckpoint(run)
	if err != nil {
		return 0, 0, err
	}
	if ckpt == "" {
		return 0, 0, fmt.Errorf("training: %s has no checkpoint to evaluate", run)
	}
	store := model.NewStore()
	if _, err := checkpoint.Load(store).Dir(ckpt).Immediate().Done(); err != nil {
		return 0, 0, fmt.Errorf("training: cannot read checkpoint %s: %w", ckpt, err)
	}
	if prefetch == 0 {
		prefetch = DefaultDevicePrefetch
	}
	e := &evaluator{backend: b, store: store, cfg: cfg, prefetch: prefetch}
	defer func() {
		if e.exec != nil {
			e.exec.Finalize()
		}
	}()
	return e.run(data.Val)
}

// loadBackbone copies the variables of the network scoped backbone (kernels, batch-norm scales,
// offsets and moving statistics, the classifier) from the latest checkpoint of run (a run folder)
// or from run itself (a checkpoint folder) into store: Config.WarmStart. Every such variable of the
// checkpoint is copied; the store's, where it has them already (a pooled run), must have the same
// shapes.
func loadBackbone(store *model.Store, backbone, run string) error {
	ckpt := run
	if _, err := os.Stat(filepath.Join(run, rundir.CheckpointsDir)); err == nil {
		latest, err := LatestCheckpoint(run)
		if err != nil {
			return err
		}
		if latest == "" {
			return fmt.Errorf("%s has no checkpoint yet: train it first", run)
		}
		ckpt = latest
	}
	src := model.NewStore()
	if _, err := checkpoint.Load(src).Dir(ckpt).Immediate().Done(); err != nil {
		return fmt.Errorf("cannot read checkpoint %s: %w", ckpt, err)
	}
	prefix := "/" + backbone + "/"
	copied := 0
	for v := range src.IterVariables() {
		if !strings.HasPrefix(v.Path(), prefix) {
			continue
		}
		value, err := v.Value()
		if err != nil {
			return fmt.Errorf("checkpoint %s: %s: %w", ckpt, v.Path(), err)
		}
		if value, err = value.LocalClone(); err != nil {
			return err
		}
		if err := torchfile.Assign(store, v.Path(), value); err != nil {
			return fmt.Errorf("checkpoint %s: %w: not the same network", ckpt, err)
		}
		copied++
	}
	if copied == 0 {
		return fmt.Errorf("checkpoint %s holds no variables of %q: it is not a run of this backbone", ckpt, backbone)
	}
	return nil
}
