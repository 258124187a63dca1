package training

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
)

// A run: GoMLX's Trainer and evaluator for one configuration, the variables they train, and
// their reuse by the next seed of a comparison (why: compiling DenseNet-121 takes ~50 s on XLA).

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
	// heap is the Go heap limit for the run's largest training step (the pure-Go backend only);
	// Fit releases it when it returns, and a pooled run's next Fit raises it again.
	heap HeapLimit
	// stepValues holds the planned values of the training step at each batch size planned.
	stepValues map[int]int64
}

func newRun(b compute.Backend, store *model.Store, cfg Config, opt Options) *run {
	r := &run{b: b, store: store, opt: opt, cfg: cfg, compiled: map[int]bool{}, stepValues: map[int]int64{},
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
