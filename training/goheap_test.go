package training

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"testing"
	"time"

	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/internal/platform"
)

// TestGoHeapLimitedDuringTraining: on the pure-Go backend, Fit's training steps run under a Go
// heap limit sized from the largest step's plan (the live heap, the values and a tenth, the
// slack), and Fit restores the limit that was there; on the other backends, and when GOMEMLIMIT
// is set, the limit is left alone.
func TestGoHeapLimitedDuringTraining(t *testing.T) {
	if v := debug.SetMemoryLimit(-1); v != math.MaxInt64 {
		t.Skipf("a Go memory limit (%d) is already set", v)
	}
	for _, be := range backendtest.All(t) {
		for _, userLimit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/GOMEMLIMIT=%v", be.Name, userLimit), func(t *testing.T) {
				if userLimit {
					t.Setenv("GOMEMLIMIT", "64GiB") // the runtime reads it at start only: here, the user's choice
				}
				cfg := tinyConfig()
				cfg.Epochs = 1
				var during []int64
				opt := Options{Dir: t.TempDir(), OnStep: func(time.Duration) { during = append(during, debug.SetMemoryLimit(-1)) }}
				hist, err := Fit(context.Background(), be.Backend, cfg, tinyData(), opt)
				if err != nil {
					t.Fatal(err)
				}
				if after := debug.SetMemoryLimit(-1); after != math.MaxInt64 {
					t.Errorf("after Fit the limit is %d, want it restored (none)", after)
					debug.SetMemoryLimit(math.MaxInt64)
				}
				if len(during) == 0 || len(hist.Epochs) != 1 {
					t.Fatalf("%d steps seen, %d epochs", len(during), len(hist.Epochs))
				}
				limited := platform.Of(be.Backend) == platform.Go && !userLimit
				for i, l := range during {
					switch {
					case limited && (l == math.MaxInt64 || l < heapLimitSlack):
						t.Errorf("step %d ran with the heap limit %d, want one sized from its plan", i+1, l)
					case !limited && l != math.MaxInt64:
						t.Errorf("step %d ran with the heap limit %d, want none", i+1, l)
					}
				}
			})
		}
	}
}

// TestGoHeapLimitIsWhatIsAvailable: the limit is the memory available (the live heap kept, less
// the slack), so a machine with memory to spare runs at full speed, but never less than the step
// needs, and the step's floor where the available memory is unknown.
func TestGoHeapLimitIsWhatIsAvailable(t *testing.T) {
	const gb = 1 << 30
	for _, c := range []struct {
		live, values, avail, want int64
	}{
		{live: 1 * gb, values: 10 * gb, avail: 20 * gb, want: 21*gb - heapLimitSlack},             // room to spare
		{live: 1 * gb, values: 10 * gb, avail: 5 * gb, want: 12*gb + heapLimitSlack},              // short: the floor
		{live: 1 * gb, values: 10 * gb, avail: 0, want: 12*gb + heapLimitSlack},                   // unknown: the floor
		{live: 0, values: 10 * gb, avail: 11*gb + 2*heapLimitSlack, want: 11*gb + heapLimitSlack}, // at the floor
	} {
		if got := goHeapLimit(c.live, c.values, c.avail); got != c.want {
			t.Errorf("goHeapLimit(live %d, values %d, available %d) = %d, want %d", c.live, c.values, c.avail, got, c.want)
		}
	}
}
