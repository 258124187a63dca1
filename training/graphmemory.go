package training

import (
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/learnresize/learnresize/internal/platform"
	"github.com/learnresize/learnresize/internal/resources"
)

// Compiled graphs hold memory for as long as they live: on ONNX Runtime each graph is a session
// whose arena keeps the largest it ever allocated (20 GB for the tutorial's training step at batch
// 64 on a 2-core VM), on the pure-Go backend pools of buffers. A process holds several: a run's
// training graph per batch size (the epoch's last, partial batch is a second one), its validation
// graph, and, in a comparison, the graphs of the other model's run, kept so that its next seed
// need not compile again. Where they cannot all fit, makeRoom releases the ones held before a new
// one is compiled: they are compiled again when next needed (about a minute for DenseNet-121's
// training step on ONNX Runtime), which is cheaper than the process killed at the end of an epoch.

// makeRoom is called before a training step at batch size n. If the run has no graph for n (GoMLX
// will compile one) and the backend has a memory estimate (the CPU ones; XLA's memory is a
// GPU's), it estimates the new graph's memory and, if that is more than the machine has available
// now, releases every compiled graph this process holds (this run's and, in a comparison, the
// pooled runs'), saying so on the progress bar's log.
//
// On the pure-Go backend it also limits Go's heap to what the largest of the run's training steps
// needs (HeapLimit).
func (r *run) makeRoom(n int, bar *progress) {
	if r.compiled[n] {
		r.heap.Raise(r.b, r.stepValues[n]) // a pooled run's next seed
		return
	}
	held := r.holding()
	defer func() { r.compiled[n] = true }()
	kind := platform.Of(r.b)
	if len(held) == 0 && kind != platform.Go {
		return
	}
	plan, err := StepMemory(r.b, r.cfg.Model, n, r.cfg.LabelSmoothing)
	if err != nil {
		return // no estimate: compile as GoMLX would
	}
	r.stepValues[n] = plan.Peak
	r.heap.Raise(r.b, plan.Peak)
	est := estimateFromPlan(kind, r.cfg.Model.Recompute, r.cfg.Lean, n, 0, plan)
	if est.Process == 0 || len(held) == 0 {
		return
	}
	avail, ok := availableMemory()
	if !ok || uint64(est.Process) <= avail {
		return
	}
	var names []string
	for _, h := range held {
		names = append(names, h.describeGraphs())
		h.releaseGraphs()
	}
	runtime.GC()
	debug.FreeOSMemory()
	if bar != nil {
		after, _ := availableMemory()
		bar.note("Memory: the training graph for a batch of %d needs about %s and %s is available: "+
			"released the compiled graphs held (%s), to compile them again when needed; %s available now",
			n, resources.Size(uint64(est.Process)), resources.Size(avail), strings.Join(names, "; "), resources.Size(after))
	}
}

// holding returns the runs of this process that hold compiled graphs: this one and, in a
// comparison, the pooled others.
func (r *run) holding() []*run {
	var held []*run
	if r.holdsGraphs() {
		held = append(held, r)
	}
	keys := make([]string, 0, len(r.pool))
	for k := range r.pool {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if o := r.pool[k]; o != r && o.holdsGraphs() {
			held = append(held, o)
		}
	}
	return held
}

func (r *run) holdsGraphs() bool { return len(r.compiled) > 0 || r.eval.exec != nil }

// describeGraphs names a run's graphs for the log: "resizer: training at batches 25, 64; validation".
func (r *run) describeGraphs() string {
	var batches []int
	for n := range r.compiled {
		batches = append(batches, n)
	}
	slices.Sort(batches)
	var parts []string
	if len(batches) > 0 {
		sizes := make([]string, len(batches))
		for i, n := range batches {
			sizes[i] = strconv.Itoa(n)
		}
		parts = append(parts, "training at batch "+strings.Join(sizes, ", "))
	}
	if r.eval.exec != nil {
		parts = append(parts, "validation")
	}
	return r.cfg.Model.Name() + ": " + strings.Join(parts, ", ")
}

// releaseGraphs finalizes a run's compiled graphs (its Trainer's and its evaluator's), keeping its
// variables: the next step compiles again.
func (r *run) releaseGraphs() {
	r.trainer.ResetComputationGraphs()
	clear(r.compiled)
	if r.eval.exec != nil {
		r.eval.exec.Finalize()
		r.eval.exec = nil
	}
}
