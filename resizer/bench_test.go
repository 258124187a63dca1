package resizer

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/janpfeifer/go-benchmarks"
	"github.com/learnresize/learnresize/internal/platform"
)

var (
	flagBenchDuration = flag.Duration("bench_duration", 0, "run the go-benchmarks resize benchmarks for this long each (0 skips them)")
	flagBenchBatch    = flag.Int("bench_batch", 0, "batch size of the resize benchmark (default: 8 on the go backend, 64 on XLA)")
	flagBenchChannels = flag.Int("bench_channels", 16, "channels of the resize benchmark")
	flagBenchSize     = flag.Int("bench_size", 300, "input height and width of the resize benchmark")
	flagBenchOut      = flag.Int("bench_out", 0, "output height and width of the resize benchmark (default: half the input)")
)

// TestBenchResize times forward+backward of a bilinear 300->150 resize (the resizer's bottleneck,
// [batch, 300, 300, 16]) with GoMLX's graph.Interpolate and with our formulations, on the same
// backend in the same run. Compile time is excluded (warm-up) and reported separately.
//
//	GOMLX_BACKEND=go go test ./resizer -run TestBenchResize -bench_duration=10s
func TestBenchResize(t *testing.T) {
	if *flagBenchDuration == 0 {
		t.Skip("benchmark: set -bench_duration=10s to run it")
	}
	b := testBackend(t)
	batch := *flagBenchBatch
	if batch == 0 {
		batch = 64
		if !platform.Of(b).XLA() {
			batch = 8
		}
	}
	in, out, ch := *flagBenchSize, *flagBenchSize/2, *flagBenchChannels
	if *flagBenchOut > 0 {
		out = *flagBenchOut
	}
	fmt.Printf("backend %s (%s); fwd+bwd of sum(resize(x)^2), x=[%d,%d,%d,%d] -> %dx%d bilinear\n",
		b.Name(), b.Description(), batch, in, in, ch, out, out)
	x := tensors.FromShape(shapes.Make(dtypes.Float32, batch, in, in, ch))
	tensors.MustMutableFlatData[float32](x, func(flat []float32) {
		for i := range flat {
			flat[i] = float32(i%251) / 251
		}
	})
	impls := []struct {
		name string
		fn   func(x *Node) *Node
	}{
		{"graph.Interpolate", func(x *Node) *Node { return Interpolate(x, -1, out, out, -1).Bilinear().Done() }},
		{"resizer.Resize dense", func(x *Node) *Node { return ResizeWith(x, out, out, Bilinear, Dense) }},
		{"resizer.Resize banded", func(x *Node) *Node { return ResizeWith(x, out, out, Bilinear, Banded) }},
	}
	var fns []benchmarks.NamedFunction
	for _, impl := range impls {
		exec := MustNewExec(b, func(x *Node) *Node {
			loss := ReduceAllSum(Square(impl.fn(x)))
			return ReduceAllSum(Gradient(loss, x)[0]) // one scalar read back: the device has finished.
		})
		start := time.Now()
		exec.MustExec(x)
		fmt.Printf("  %-24s compile+first run %s\n", impl.name, time.Since(start).Round(time.Millisecond))
		fns = append(fns, benchmarks.NamedFunction{Name: impl.name, Func: func() {
			r := exec.MustExec(x)[0]
			_ = r.Value()
			r.FinalizeAll()
		}})
	}
	benchmarks.New(fns...).WithWarmUps(2).WithDuration(*flagBenchDuration).Done()
	_ = os.Stdout.Sync()
}
