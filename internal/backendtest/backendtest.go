// Package backendtest gives tests every backend the project trains on, so that numerical tests
// (values and gradients) run on each of them in one go test run:
//
//   - "go": GoMLX's pure-Go backend as package backend starts it, with internal/layers' portable
//     formulations (its default there, and the ones ONNX Runtime runs, so that they are checked
//     even where ONNX Runtime is absent);
//   - "go-native": a pure-Go backend of its own with GoMLX's native strided ops
//     (platform.SetFormulation), the formulations XLA runs;
//   - "onnx": ONNX Runtime on the CPU (GoMLX's compute-onnx), when its library is found;
//   - "xla": only when GOMLX_BACKEND names an XLA configuration (the GPU machine runs the test
//     binaries with "xla:<cuda plugin>"); then the list is "go-native" (the reference some tests
//     need, with XLA's formulations) and "xla", and the CPU-only variants are left out.
//
// The first backend is always the pure-Go one.
//
// With LEARNRESIZE_REQUIRE_ONNX set (CI sets it), a missing ONNX Runtime library fails the test
// instead of leaving ONNX Runtime out.
package backendtest

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/go-xla/compute/xla"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/internal/ortlib"
	"github.com/learnresize/learnresize/internal/platform"
)

// EnvRequireONNX makes a missing ONNX Runtime library a test failure.
const EnvRequireONNX = "LEARNRESIZE_REQUIRE_ONNX"

// GoConfig is package backend's GoConfig (repeated here: nothing under internal/ imports backend).
const GoConfig = "go:ops_sequential"

// Backend is one backend to test on.
type Backend struct {
	Name string
	compute.Backend
	// Native: the model code uses GoMLX's native strided ops here, as on XLA (a backend of its own,
	// whose platform.Formulation is platform.Native).
	Native bool
}

// native starts a pure-Go backend of its own whose graphs use GoMLX's native strided ops.
func native() (compute.Backend, error) {
	b, err := compute.NewWithConfig(GoConfig)
	if err == nil {
		platform.SetFormulation(b, platform.Native)
	}
	return b, err
}

var (
	xlaOnce sync.Once
	xlaBE   []Backend
	xlaErr  error

	once     sync.Once
	backends []Backend
	onnxErr  error
	onnxLib  string
)

// All returns the backends to test on (started once per test binary): the CPU ones, or go and the
// XLA configuration GOMLX_BACKEND names (for a plugin outside go-xla's folders, set XLA_FLAGS' CUDA
// data dir as package backend does).
func All(t testing.TB) []Backend {
	t.Helper()
	if cfg := os.Getenv(compute.ConfigEnvVar); strings.HasPrefix(cfg, "xla") {
		xlaOnce.Do(func() {
			defer func() {
				if r := recover(); r != nil {
					xlaErr = fmt.Errorf("%v", r)
				}
			}()
			gob, err := native()
			if err != nil {
				xlaErr = err
				return
			}
			b, err := compute.NewWithConfig(cfg)
			if err != nil {
				xlaErr = err
				return
			}
			xlaBE = []Backend{{Name: "go-native", Backend: gob, Native: true}, {Name: "xla", Backend: b}}
		})
		if xlaErr != nil {
			t.Fatalf("%s=%q does not start: %v", compute.ConfigEnvVar, cfg, xlaErr)
		}
		return xlaBE
	}
	once.Do(func() {
		gob, err := compute.NewWithConfig(GoConfig)
		if err != nil {
			panic(err)
		}
		gon, err := native()
		if err != nil {
			panic(err)
		}
		backends = []Backend{{Name: "go", Backend: gob}, {Name: "go-native", Backend: gon, Native: true}}
		lib, _ := ortlib.Find()
		onnxLib = lib
		if lib == "" {
			return
		}
		ob, err := compute.NewWithConfig(ortlib.Config(lib))
		if err != nil {
			onnxErr = err
			return
		}
		backends = append(backends, Backend{Name: "onnx", Backend: ob})
	})
	switch {
	case onnxErr != nil:
		t.Fatalf("ONNX Runtime %s does not start: %v", onnxLib, onnxErr)
	case onnxLib == "" && os.Getenv(EnvRequireONNX) != "":
		t.Fatalf("%s is set but no ONNX Runtime library was found (scripts/install_onnxruntime.sh)", EnvRequireONNX)
	case onnxLib == "":
		t.Log("no ONNX Runtime library found: testing the go backend only (scripts/install_onnxruntime.sh installs it)")
	}
	return backends
}

// TF32 reports whether float32 matrix multiplications or convolutions on b may round their inputs
// to TF32 (10 mantissa bits, unit roundoff 2^-11 = 4.9e-4, against float32's 6e-8): XLA on an NVIDIA
// GPU unless both switches are off. go-xla v0.4.13's "tf32=false" only sets DotGeneral's precision;
// its convolutions always ask for XLA's default precision, which lets cuDNN use TF32, so full float32
// needs NVIDIA_TF32_OVERRIDE=0 as well (on an H200, a 5x5 convolution's output was 3.4e-4 off float64
// with TF32 on, within 1e-5 with both switches off). Float32 tests widen their tolerances where TF32
// is on, and say why; scripts/gpu_session.sh runs them both ways.
func TF32(b compute.Backend) bool {
	xb, ok := b.(*xla.Backend)
	if !ok || !strings.Contains(strings.ToLower(xb.Description()), "cuda") {
		return false
	}
	return xb.DotGeneralUseTF32 || os.Getenv("NVIDIA_TF32_OVERRIDE") != "0"
}

// RunToRun is the relative difference two runs of the same computation may show on b: 0 on the CPU
// backends, which are bit-reproducible (and tests hold them to it); on XLA 1e-6, or 2e-2 where TF32
// is on. XLA on a GPU is not reproducible: cuDNN's autotuned algorithms and XLA's reductions sum in
// varying order. Measured on an H100 with a tiny model: two identical one-epoch runs ended 4e-8
// apart in their loss with TF32 off; with TF32 on, 4e-5 after one epoch and up to 6.1e-3 (a
// validation loss) after three, as training amplifies each step's rounding. A real difference (a
// resumed run restarting an epoch, a graph keeping the previous seed's weights) moves losses by
// tens of percent.
func RunToRun(b compute.Backend) float64 {
	switch {
	case TF32(b):
		return 2e-2
	case platform.Of(b).XLA():
		return 1e-6
	}
	return 0
}

// Close reports whether got is within RunToRun(b) of want, relative to |want| (equal when that is 0).
func Close(b compute.Backend, got, want float64) bool {
	if tol := RunToRun(b); tol > 0 {
		return math.Abs(got-want) <= tol*math.Abs(want)
	}
	return got == want
}

// RelDiff is |got - want| / |want| over whole tensors (Euclidean norms; |got - want| when want is
// zero, +Inf when the lengths differ).
func RelDiff(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		num += (got[i] - want[i]) * (got[i] - want[i])
		den += want[i] * want[i]
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// CentralDifferences is the gradient of loss at v by central differences with step eps (the
// reference the numerical tests hold gradients to). v is not modified.
func CentralDifferences(v []float64, eps float64, loss func([]float64) float64) []float64 {
	g := make([]float64, len(v))
	p := append([]float64(nil), v...)
	for i := range v {
		p[i] = v[i] + eps
		up := loss(p)
		p[i] = v[i] - eps
		g[i] = (up - loss(p)) / (2 * eps)
		p[i] = v[i]
	}
	return g
}

// FloatTensor makes a float64 or float32 tensor (by dtype) of the values v shaped dims.
func FloatTensor(v []float64, dims []int, dtype dtypes.DType) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	v32 := make([]float32, len(v))
	for i := range v {
		v32[i] = float32(v[i])
	}
	return tensors.FromFlatDataAndDimensions(v32, dims...)
}
