package training

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"github.com/gomlx/compute"

	"github.com/learnresize/learnresize/internal/platform"
)

// On the pure-Go backend a training step's values are Go memory: each buffer goes back to a pool of
// its size (sync.Pool) after its last reader, and the pools are emptied only by Go's collector,
// which by default (GOGC=100) lets the heap grow to twice what was live at its last collection. So
// the process holds far more than the step needs: 7.1 GB at the tutorial's batch 8 for 2.31 GB of
// planned values. A soft memory limit (runtime/debug.SetMemoryLimit; HeapLimit) makes the collector
// run as the heap nears it, and the pools' idle buffers are freed for the next value, but it costs
// time: at batch 8 a limit at the plan (3.6 GB) made the step 30% slower, one at 4.3 GB 15%
// (docs/BENCHMARKS.md). So the limit is what the machine has available, where the process would
// otherwise take more than there is and be killed, and never less than the plan needs: a machine with
// memory to spare runs at full speed. ONNX Runtime and XLA allocate outside Go's heap and are not
// concerned.

// heapLimitSlack is what the limit allows above the live heap and the step's values: the batch being
// prepared on the side (DevicePrefetch), the optimizer's temporaries, Go's own.
const heapLimitSlack = 512 << 20

// goHeapLimit is the soft memory limit for training steps whose values plan at values bytes when
// live bytes of Go heap are in use outside them (the variables, the decoded images, ...) and avail
// bytes more are available on the machine (0: unknown): all that is available, less the slack, but
// not less than the floor the step needs (the live heap, the values and a tenth for the pools' size
// rounding, and the slack).
func goHeapLimit(live, values, avail int64) int64 {
	floor := live + values + values/10 + heapLimitSlack
	if avail <= 0 {
		return floor
	}
	return max(floor, live+avail-heapLimitSlack)
}

// HeapLimit holds the Go runtime's soft memory limit, on the pure-Go backend, at what the largest of
// a series of training steps needs (Fit's steps at each batch size; bench's training rows). The zero
// value holds none; Release restores what was there before.
type HeapLimit struct {
	values  int64
	restore func()
}

// Raise sets the limit for a training step whose values plan at values bytes (StepMemory's Peak),
// if that is more than any step before needed (goHeapLimit: what is available, not less than the
// step needs). Elsewhere than on the pure-Go backend, or when the GOMEMLIMIT variable is set (the
// user's limit stands), or when the limit in force is already lower, it changes nothing.
func (l *HeapLimit) Raise(b compute.Backend, values int64) {
	if values <= l.values || platform.Of(b) != platform.Go || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	l.Release()
	runtime.GC() // the live heap as the step will find it
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	var live int64
	if sample[0].Value.Kind() == metrics.KindUint64 {
		live = int64(min(sample[0].Value.Uint64(), math.MaxInt64/2))
	}
	var avail int64
	if a, ok := availableMemory(); ok {
		avail = int64(min(a, math.MaxInt64/2))
	}
	limit := goHeapLimit(live, values, avail)
	prev := debug.SetMemoryLimit(-1)
	l.values = values
	if limit >= prev {
		return
	}
	debug.SetMemoryLimit(limit)
	l.restore = func() { debug.SetMemoryLimit(prev) }
}

// Release restores the limit that was there before Raise set one.
func (l *HeapLimit) Release() {
	if l.restore != nil {
		l.restore()
	}
	l.values, l.restore = 0, nil
}
