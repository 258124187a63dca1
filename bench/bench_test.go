package bench

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"

	"github.com/learnresize/learnresize/models"
)

// TestOnlyByKind: -only takes a benchmark kind as well as a name substring, so that one row can be
// picked where names share every comma-free substring ("train step, Learnable ..." and "eval step,
// Learnable ...").
func TestOnlyByKind(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	m := models.Tutorial()
	m.InputHeight, m.InputWidth, m.TargetHeight, m.TargetWidth = 40, 40, 32, 32
	m.Filters, m.Blocks, m.Growth = 2, []int{1}, 2
	rep, err := Run(b, Config{Model: m, Batch: 2, Channels: 2, Duration: 50 * time.Millisecond, Only: []string{KindTrainResizer}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Kind != KindTrainResizer || rep.Results[0].Runs == 0 {
		t.Fatalf("results %+v, want one timed %s row", rep.Results, KindTrainResizer)
	}
	// The row's memory figures: the plan of its values and, on Linux, the process's peak, which
	// holds at least those values.
	r := rep.Results[0]
	if r.PlannedValuesBytes <= 0 || r.EstimatedBytes <= r.PlannedValuesBytes {
		t.Errorf("planned values %d, estimate %d bytes", r.PlannedValuesBytes, r.EstimatedBytes)
	}
	if runtime.GOOS == "linux" && (r.PeakRSSBytes < uint64(r.PlannedValuesBytes) || r.FirstCallPeakRSSBytes == 0) {
		t.Errorf("peak memory %d bytes (first call %d) for %d bytes of values", r.PeakRSSBytes, r.FirstCallPeakRSSBytes, r.PlannedValuesBytes)
	}
}
