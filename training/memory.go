package training

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/learnresize/learnresize/internal/memplan"
	"github.com/learnresize/learnresize/internal/platform"
	"github.com/learnresize/learnresize/internal/resources"
	"github.com/learnresize/learnresize/models"
)

// errPlanned stops StepMemory's graph before it is compiled: only its shape is needed.
var errPlanned = errors.New("training step planned")

// StepMemory plans the memory of one training step of cfg at this batch on backend b: the graph
// of the loss, every trainable variable's gradient and the SGD update, as Fit's Trainer builds it,
// planned by package memplan in the order b runs it (ONNX Runtime's walk there, creation order
// elsewhere). The graph is built, not compiled or run: it takes about a second even at batch 64.
func StepMemory(b compute.Backend, cfg models.Config, batch int, smoothing float64) (memplan.Plan, error) {
	var plan memplan.Plan
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(1))
	exec, err := model.NewExec(b, store, func(scope *model.Scope, x, y *Node) *Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		loss := LossFn(smoothing)([]*Node{y}, []*Node{models.Build(scope, x, cfg, nil)})
		optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.01).Done().UpdateGraph(scope, g, loss)
		outs := []*Node{loss}
		for v := range scope.IterVariables() {
			if n := v.NodeValue(g); n.Type() != NodeTypeParameter {
				outs = append(outs, n) // updated weights and moving statistics
			}
		}
		ord := memplan.Creation
		if platform.Of(b) == platform.ONNX {
			ord = memplan.ONNXRuntime
		}
		plan = memplan.EstimateOrder(ord, outs...)
		panic(errPlanned)
	})
	if err != nil {
		return plan, err
	}
	defer exec.Finalize()
	_, err = exec.Compile(shapes.Make(dtypes.Uint8, batch, cfg.InputHeight, cfg.InputWidth, 3), shapes.Make(dtypes.Float32, batch, cfg.Classes))
	if plan.Nodes == 0 {
		if err == nil {
			err = errors.New("the graph was not built")
		}
		return plan, fmt.Errorf("planning the training step's memory: %w", err)
	}
	return plan, nil
}

// Process memory of a training step, per CPU backend, fitted to peaks measured on a 2-core Intel
// Xeon VM (docs/BENCHMARKS.md, issue 26's memory tables).
//
// On ONNX Runtime: base + perNode × the graph's operations + factor × the bytes of memplan's model
// of its allocation planner (memplan.Plan.Reuse). The planner gives a new value the buffer of a dead
// value of exactly its shape, so a buffer freed in the forward pass stays allocated, idle, until a
// value of its shape comes in the backward pass (onnxruntime PR 7359; the switch that turns that
// off, enable_mem_reuse, is not in ONNX Runtime's C API, which compute-onnx uses); its arena's
// growth by doubling and kernels' temporaries come on top. The session itself grows with the graph:
// about 1.5 GB for the tutorial's training step (26,700 operations) whatever the batch, where the
// small configuration's whole process takes 0.15 GB. One fit for both models, steps that recompute
// activations and steps that do not (convolutions per tap, 2026-12-02): within -4% to +8% of the
// eight peaks measured at batches 16 to 64, +1% and +19% at batch 8 (4.37 GB with the resizer, 2.76
// GB without), +68% for the small configuration's 0.15 GB. The pure-Go backend has no such reuse:
// base + factor × the values' peak (memplan.Plan.Peak).
const (
	onnxBaseBytes    = 0.05e9
	onnxBytesPerNode = 0.56e9 / 1e4
	onnxFactor       = 1.08
	// The pure-Go backend: Go's heap, which training limits to the memory available (HeapLimit), and
	// where that is short, down to what the step's plan needs; its kernels' temporaries (transposed
	// and packed operands of the matrix products, the im2col matrix of the resizer's first 7x7
	// convolution) and the pools' size rounding come on top. Measured with the heap held at the plan
	// (GOMEMLIMIT), convolutions per tap (2026-12-02): 2.79, 4.41 and 14.3 GB at batches 8, 16 and 64
	// with the resizer for 1.83, 3.03 and 9.37 GB of values (the fit is exact at batch 64, 9-10%
	// above at the others). With the memory to spare the heap grows into it: 20.6 GB at batch 64.
	goBaseBytes = 0.3e9
	goFactor    = 1.5
	// ONNX Runtime without buffer sharing (Config.Lean, ortlib.LeanConfig): base + perNode × the
	// graph's operations + factor × the values' peak (memplan.Plan.Peak), since no buffer waits for
	// a later value. Fitted to the tutorial's step with its activations recomputed (33,360
	// operations), measured at batches 8, 16, 32 and 64: 1.76, 2.29, 3.36 and 5.78 GB for 0.47,
	// 0.78, 1.54 and 3.05 GB of values (2026-12-02, fourth session): within -3% to +3%.
	leanBaseBytes    = 0.05e9
	leanBytesPerNode = 0.31e9 / 1e4
	leanFactor       = 1.55
)

// MemoryEstimate is what one training step needs on a backend.
type MemoryEstimate struct {
	Batch int
	// Values is the planned peak of the step's values (memplan.Plan.Peak), in bytes.
	Values int64
	// Reused is the planned peak with ONNX Runtime's reuse of buffers (memplan.Plan.Reuse), in
	// bytes, and Nodes the graph's operations (memplan.Plan.Nodes): what the estimate on ONNX Runtime
	// is made from.
	Reused int64
	Nodes  int
	// Process is the estimated peak resident memory of a process that runs the step on this
	// backend, in bytes; 0 where there is no estimate (XLA: its memory is the GPU's).
	Process int64
	// Backend names the backend the estimate is for.
	Backend string
	// Remainder, when not 0, is the size of the epoch's last, partial training batch: the Trainer
	// compiles a second training graph for it (with its own ONNX Runtime session and arena), and
	// Together counts both graphs held at once. Once, at the tutorial's settings on a 23 GiB machine,
	// that second graph was what killed the process, at the epoch's last step; Fit now releases the
	// first graph before compiling the second when the two do not fit together (makeRoom).
	Remainder int
	// Together is the estimated peak with both graphs held (Process when there is no Remainder).
	Together int64
	// Alternate says that the two graphs do not fit together in the memory available but each
	// fits alone (CheckMemory sets it): Fit will release one before compiling the other, and so
	// compile both again every epoch.
	Alternate bool
	// Recompute says the step recomputes activations in the backward pass (models.Config.Recompute).
	Recompute bool
	// Lean says the step runs on ONNX Runtime without buffer sharing (Config.Lean), and ChoseLean
	// that CheckMemory turned it on, with Recompute where the model has it, because the step did not
	// fit otherwise (it would need Without bytes).
	Lean, ChoseLean bool
	// ChoseRecompute says that CheckMemory turned Recompute on because the step did not fit
	// without it, when it would need Without bytes; Apply gives the configuration that fits.
	ChoseRecompute bool
	Without        int64
	// Available is the memory that was available when CheckMemory chose to recompute.
	Available uint64
}

// Apply returns cfg as the estimate says it fits: with Recompute and Lean on where CheckMemory
// chose them.
func (e MemoryEstimate) Apply(cfg Config) Config {
	if e.ChoseRecompute {
		cfg.Model.Recompute = true
	}
	if e.ChoseLean {
		cfg.Lean = true
	}
	return cfg
}

// String is the estimate for the user: "the training step at batch 64 needs about 21 GB of memory
// on ONNX Runtime (its values 9.36 GB at once)".
func (e MemoryEstimate) String() string {
	if e.Process == 0 {
		return fmt.Sprintf("the training step at batch %d holds about %s of values at once", e.Batch, resources.Size(uint64(e.Values)))
	}
	s := fmt.Sprintf("the training step at batch %d needs about %s of memory on %s (its values %s at once)",
		e.Batch, resources.Size(uint64(e.Process)), e.Backend, resources.Size(uint64(e.Values)))
	switch {
	case e.ChoseLean:
		s = fmt.Sprintf("the training step at batch %d would need about %s of memory, more than the %s available, so it runs on %s "+
			"(as -lean asks; 1.6 to 2 times the time at the tutorial's settings): about %s (its values %s at once)",
			e.Batch, resources.Size(uint64(e.Without)), resources.Size(e.Available), e.Backend, resources.Size(uint64(e.Process)),
			resources.Size(uint64(e.Values)))
	case e.ChoseRecompute:
		s = fmt.Sprintf("the training step at batch %d would need about %s of memory on %s, more than the %s available, so its "+
			"activations are recomputed in the backward pass instead of kept (as -recompute asks; 5-15%% slower at the "+
			"tutorial's settings): about %s (its values %s at once)",
			e.Batch, resources.Size(uint64(e.Without)), e.Backend, resources.Size(e.Available), resources.Size(uint64(e.Process)),
			resources.Size(uint64(e.Values)))
	}
	switch {
	case e.Alternate:
		s += fmt.Sprintf("; with the epoch's last, partial batch of %d (a second compiled graph) it would need %s, more than is available, "+
			"so each graph is released before the other is compiled: both are compiled again every epoch", e.Remainder, resources.Size(uint64(e.Together)))
	case e.Remainder > 0:
		s += fmt.Sprintf("; with the epoch's last, partial batch of %d (a second compiled graph, kept beside the first) about %s",
			e.Remainder, resources.Size(uint64(e.Together)))
	}
	return s
}

// EstimateMemory estimates the memory one training step of cfg needs on backend b.
func EstimateMemory(b compute.Backend, cfg Config) (MemoryEstimate, error) {
	plan, err := StepMemory(b, cfg.Model, cfg.BatchSize, cfg.LabelSmoothing)
	if err != nil {
		return MemoryEstimate{}, err
	}
	return estimateFromPlan(platform.Of(b), cfg.Model.Recompute, cfg.Lean, cfg.BatchSize, 0, plan), nil
}

// estimateFromPlan turns a step's plan into the process estimate for a kind of backend and a step
// that recomputes activations or not, run lean (Config.Lean; on ONNX Runtime only) or not, with the
// epoch's last partial batch of remainder examples (0: none) as a second graph (its own session on
// ONNX Runtime) whose planned bytes scale with its batch (counted in Together).
func estimateFromPlan(kind platform.Kind, recompute, lean bool, batch, remainder int, plan memplan.Plan) MemoryEstimate {
	e := MemoryEstimate{Batch: batch, Values: plan.Peak, Reused: plan.Reuse, Nodes: plan.Nodes, Remainder: remainder, Recompute: recompute}
	var graph, factor, planned float64 // graph: what does not grow with the batch
	switch {
	case kind == platform.ONNX && lean:
		e.Lean = true
		e.Backend, graph, factor, planned = "ONNX Runtime without buffer sharing", leanBytesPerNode*float64(plan.Nodes), leanFactor, float64(plan.Peak)
		e.Process = int64(leanBaseBytes + graph + factor*planned)
	case kind == platform.ONNX:
		e.Backend, graph, factor, planned = "ONNX Runtime", onnxBytesPerNode*float64(plan.Nodes), onnxFactor, float64(plan.Reuse)
		e.Process = int64(onnxBaseBytes + graph + factor*planned)
	case kind == platform.Go:
		e.Backend, factor, planned = "the pure-Go backend", goFactor, float64(plan.Peak)
		e.Process = int64(goBaseBytes + factor*planned)
	default:
		return e
	}
	e.Together = e.Process
	if remainder > 0 {
		e.Together += int64(graph + factor*planned*float64(remainder)/float64(batch))
	}
	return e
}

// scaled is the estimate e at another batch: the planned bytes grow in proportion to the batch
// (activations; the weights are a few MB), the graph's operations stay.
func (e MemoryEstimate) scaled(kind platform.Kind, batch int) MemoryEstimate {
	return estimateFromPlan(kind, e.Recompute, e.Lean, batch, 0, memplan.Plan{Peak: e.Values * int64(batch) / int64(e.Batch),
		Reuse: e.Reused * int64(batch) / int64(e.Batch), Nodes: e.Nodes})
}

// remainderOf is the size of the last, partial batch of an epoch of n examples (0 if none or n unknown).
func remainderOf(n, batch int) int {
	if n <= batch {
		return 0
	}
	return n % batch
}

// MemoryError says that a training step cannot fit in this machine's memory, and what would.
type MemoryError struct {
	Estimate  MemoryEstimate
	Available uint64
	// Fits is the largest batch (a power of two below the one asked for) whose estimate fits, 0 if
	// none: CheckMemory's, the leaner ways it tried included.
	Fits int
	// FitsEstimate is Fits' estimate.
	FitsEstimate MemoryEstimate
	// Recomputing is the estimate with activations recomputed (CheckMemory tries it when the step
	// does not fit without), if it was tried; it did not fit either. Lean is the estimate without
	// buffer sharing (Config.Lean), the same.
	Recomputing, Lean *MemoryEstimate
}

func (e *MemoryError) Error() string {
	msg := fmt.Sprintf("%s, and this machine has %s available", e.Estimate, resources.Size(e.Available))
	if e.Recomputing != nil {
		msg += fmt.Sprintf("; recomputing activations in the backward pass it would still need about %s", resources.Size(uint64(e.Recomputing.Process)))
	}
	if e.Lean != nil {
		msg += fmt.Sprintf("; on ONNX Runtime without buffer sharing it would still need about %s", resources.Size(uint64(e.Lean.Process)))
	}
	if e.Fits > 0 {
		msg += fmt.Sprintf(": use -batch %d (about %s)", e.Fits, resources.Size(uint64(e.FitsEstimate.Process)))
	} else {
		msg += ": use a smaller -inp"
	}
	if e.Recomputing == nil && !e.Estimate.Recompute && e.Lean == nil {
		msg += ", -recompute"
	}
	return msg + ", or free memory; -memory-check=false runs it anyway"
}

// CheckMemory refuses, before any compilation, a training step that its estimate (EstimateMemory)
// says cannot fit in the memory this machine has available, with a *MemoryError naming the largest
// batch that would. A step that does not fit is estimated again in leaner ways, the faster first:
// a DenseNet's with its activations recomputed in the backward pass (models.Config.Recompute; 5-15%
// slower, 27% less memory at the tutorial's settings on ONNX Runtime), then on ONNX Runtime without
// buffer sharing (Config.Lean, with Recompute where the model has it; 1.6 to 2 times the time,
// 5.8 GB at the tutorial's batch 64 where the others need 13-18 GB). When one fits, the check passes
// with its estimate (ChoseRecompute, ChoseLean), and the caller trains with MemoryEstimate.Apply's
// configuration, as Fit does. numTrain, the number of training examples (0: unknown), gives the
// epoch's last partial batch, a second graph: when the two do not fit together but the step alone
// does, the estimate says so (Alternate) and passes, since Fit then releases one graph before
// compiling the other. It returns the estimate, and passes where there is none (XLA, whose memory is
// a GPU's) or the available memory is unknown.
func CheckMemory(b compute.Backend, cfg Config, numTrain int) (MemoryEstimate, error) {
	est, err := checkMemory(b, cfg, numTrain)
	var me *MemoryError
	if !errors.As(err, &me) {
		return est, err
	}
	densenet := !cfg.Model.IsResNet()
	if densenet && !cfg.Model.Recompute {
		rc := cfg
		rc.Model.Recompute = true
		rest, rerr := checkMemory(b, rc, numTrain)
		if rerr == nil {
			rest.ChoseRecompute, rest.Without, rest.Available = true, est.Process, me.Available
			return rest, nil
		}
		if rest.Process > 0 {
			me.Recomputing = &rest
		}
		me.fitsAsIn(rerr)
	}
	if platform.Of(b) == platform.ONNX && !cfg.Lean {
		lc := cfg
		lc.Lean, lc.Model.Recompute = true, cfg.Model.Recompute || densenet
		lest, lerr := checkMemory(b, lc, numTrain)
		if lerr == nil {
			lest.ChoseLean, lest.ChoseRecompute = true, lc.Model.Recompute && !cfg.Model.Recompute
			lest.Without, lest.Available = est.Process, me.Available
			return lest, nil
		}
		if lest.Process > 0 {
			me.Lean = &lest
		}
		me.fitsAsIn(lerr)
	}
	return est, err
}

// fitsAsIn takes the batch a leaner way's refusal (err, from checkMemory) says would fit, when it
// is larger than the one me names: run at that batch, the check will choose that way.
func (me *MemoryError) fitsAsIn(err error) {
	var leaner *MemoryError
	if errors.As(err, &leaner) && leaner.Fits > me.Fits {
		me.Fits, me.FitsEstimate = leaner.Fits, leaner.FitsEstimate
	}
}

// checkVariants is CheckMemory for each model an experiment trains (Compare's two, WarmStart's
// three training stages), once, before any of them trains, unless opt.SkipMemoryCheck: each gets
// its own decision to recompute activations (Apply), the same for all its seeds, and the experiment
// is refused before minutes of work if one cannot fit. Checked later, when each run starts, the
// memory available would be what the graphs the process already compiled leave, which Fit releases
// when a step needs the room (makeRoom), and one model's seeds could be decided differently. Each
// estimate is logged under the model's title and sizes. It returns the configurations to train.
func checkVariants(b compute.Backend, variants []Config, data Data, opt Options, prefix string) ([]Config, error) {
	out := slices.Clone(variants)
	if opt.SkipMemoryCheck {
		return out, nil
	}
	for i, v := range out {
		est, err := CheckMemory(b, v, data.NumTrain)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", prefix, v.Model.Title(), err)
		}
		out[i] = est.Apply(v)
		if opt.Log != nil && est.Process > 0 {
			fmt.Fprintf(opt.Log, "Memory, %s, %dx%d -> %dx%d: %s\n", v.Model.Title(), v.Model.InputHeight, v.Model.InputWidth,
				v.Model.TargetHeight, v.Model.TargetWidth, est)
		}
	}
	return out, nil
}

// checkMemory is CheckMemory for cfg as it is.
func checkMemory(b compute.Backend, cfg Config, numTrain int) (MemoryEstimate, error) {
	plan, err := StepMemory(b, cfg.Model, cfg.BatchSize, cfg.LabelSmoothing)
	if err != nil {
		return MemoryEstimate{}, err
	}
	est := estimateFromPlan(platform.Of(b), cfg.Model.Recompute, cfg.Lean, cfg.BatchSize, remainderOf(numTrain, cfg.BatchSize), plan)
	if est.Process == 0 {
		return est, nil
	}
	avail, ok := availableMemory()
	if !ok || uint64(est.Together) <= avail {
		return est, nil
	}
	if uint64(est.Process) <= avail {
		est.Alternate = true
		return est, nil
	}
	me := &MemoryError{Estimate: est, Available: avail}
	for batch := 1; batch < cfg.BatchSize; batch *= 2 {
		smaller := est.scaled(platform.Of(b), batch)
		if uint64(smaller.Process) <= avail {
			me.Fits, me.FitsEstimate = batch, smaller
		}
	}
	return est, me
}

// availableMemory is resources.AvailableMemory; tests replace it to make memory short.
var availableMemory = resources.AvailableMemory
