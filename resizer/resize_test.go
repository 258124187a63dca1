package resizer

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/internal/backendtest"
)

var (
	testBackendOnce sync.Once
	testBackendVal  compute.Backend
)

// testBackend is the backend the project would pick (GOMLX_BACKEND=go in CI).
func testBackend(t testing.TB) compute.Backend {
	testBackendOnce.Do(func() {
		b, info, err := backend.New()
		if err != nil {
			panic(err)
		}
		fmt.Fprintln(os.Stderr, info)
		testBackendVal = b
	})
	return testBackendVal
}

var formulations = []Formulation{Dense, Banded}

// runResize executes ResizeWith on a float32 or float64 input given as flat data.
func runResize[T float32 | float64](t *testing.T, in []T, shape []int, h, w int, m Method, f Formulation) []T {
	t.Helper()
	x := tensors.FromFlatDataAndDimensions(in, shape...)
	y, err := ExecOnce(testBackend(t), func(x *Node) *Node { return ResizeWith(x, h, w, m, f) }, x)
	if err != nil {
		t.Fatalf("resize %v %s %v->%dx%d: %v", f, m, shape, h, w, err)
	}
	if got, want := y.Shape().Dimensions, []int{shape[0], h, w, shape[3]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("output shape %v, want %v", got, want)
	}
	return tensors.MustCopyFlatData[T](y)
}

// float32Tol is the absolute tolerance of a float32 resize whose values are about 1: 1e-5, or 3e-3
// where XLA on a GPU rounds matmul inputs to TF32 (unit roundoff 2^-11; the two separable passes
// each round image and weights, with weight sums up to ~1.3 for bicubic; 7.3e-4 measured on an H200).
func float32Tol(t *testing.T) float64 {
	if backendtest.TF32(testBackend(t)) {
		return 3e-3
	}
	return 1e-5
}

func assertClose[T float32 | float64](t *testing.T, name string, got, want []T, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || at >= 0 && math.IsNaN(worst) {
		t.Errorf("%s: max |diff| %.3g at %d (got %v, want %v), tolerance %g", name, worst, at, got[at], want[at], tol)
	}
}

type goldenCase struct {
	InputShape  []int     `json:"input_shape"`
	OutputShape []int     `json:"output_shape"`
	Input       []float32 `json:"input"`
	Output      []float32 `json:"output"`
}

// TestBilinearGolden compares with PyTorch F.interpolate(bilinear, align_corners=False, antialias=False),
// fixtures made by testdata/gen_bilinear.py.
func TestBilinearGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/bilinear_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct{ Cases []goldenCase }
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) < 5 {
		t.Fatalf("only %d golden cases", len(golden.Cases))
	}
	for _, c := range golden.Cases {
		for _, f := range formulations {
			name := fmt.Sprintf("%v->%v/%s", c.InputShape, c.OutputShape[1:3], f)
			got := runResize(t, c.Input, c.InputShape, c.OutputShape[1], c.OutputShape[2], Bilinear, f)
			assertClose(t, name, got, c.Output, float32Tol(t))
		}
	}
}

// ---- Independent per-pixel references, written from TensorFlow's kernels (2-D, no separability). ----

func keys(x float64) float64 { // Keys' cubic convolution kernel, a = -0.5.
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x <= 1:
		return (a+2)*x*x*x - (a+3)*x*x + 1
	case x < 2:
		return a*x*x*x - 5*a*x*x + 8*a*x - 4*a
	}
	return 0
}

// cubicWeights: the 4 weights for source rows floor(pos)-1 .. floor(pos)+2, TensorFlow style
// (distance quantised to 1/1024, out-of-image taps dropped, renormalised).
func cubicWeights(pos float32, n int) (int, [4]float64) {
	base := int(math.Floor(float64(pos)))
	q := math.RoundToEven(float64((pos-float32(base))*1024)) / 1024
	var w [4]float64
	sum := 0.0
	for j := range 4 {
		if idx := base - 1 + j; idx >= 0 && idx < n {
			w[j] = keys(q - float64(j-1))
			sum += w[j]
		}
	}
	for j := range w {
		w[j] /= sum
	}
	return base - 1, w
}

func refResize(x []float64, shape []int, oh, ow int, m Method) []float64 {
	n, ih, iw, c := shape[0], shape[1], shape[2], shape[3]
	at := func(b, i, j, k int) float64 { return x[((b*ih+i)*iw+j)*c+k] }
	sh, sw := float32(ih)/float32(oh), float32(iw)/float32(ow)
	out := make([]float64, n*oh*ow*c)
	for b := range n {
		for y := range oh {
			for xx := range ow {
				for k := range c {
					var v float64
					switch m {
					case Nearest:
						i := min(int(math.Floor(float64((float32(y)+0.5)*sh))), ih-1)
						j := min(int(math.Floor(float64((float32(xx)+0.5)*sw))), iw-1)
						v = at(b, i, j, k)
					case Bilinear:
						py, px := (float32(y)+0.5)*sh-0.5, (float32(xx)+0.5)*sw-0.5
						y0, x0 := math.Floor(float64(py)), math.Floor(float64(px))
						ly, lx := float64(py)-y0, float64(px)-x0
						cl := func(v, n int) int { return min(max(v, 0), n-1) }
						i0, i1 := cl(int(y0), ih), cl(int(y0)+1, ih)
						j0, j1 := cl(int(x0), iw), cl(int(x0)+1, iw)
						top := at(b, i0, j0, k)*(1-lx) + at(b, i0, j1, k)*lx
						bot := at(b, i1, j0, k)*(1-lx) + at(b, i1, j1, k)*lx
						v = top*(1-ly) + bot*ly
					case Bicubic:
						i0, wy := cubicWeights((float32(y)+0.5)*sh-0.5, ih)
						j0, wx := cubicWeights((float32(xx)+0.5)*sw-0.5, iw)
						for a := range 4 {
							for bb := range 4 {
								if wy[a] != 0 && wx[bb] != 0 {
									v += wy[a] * wx[bb] * at(b, i0+a, j0+bb, k)
								}
							}
						}
					case Area:
						y0, y1 := float64(float32(y)*sh), float64(float32(y+1)*sh)
						x0, x1 := float64(float32(xx)*sw), float64(float32(xx+1)*sw)
						for i := int(math.Floor(y0)); i < int(math.Ceil(y1)); i++ {
							for j := int(math.Floor(x0)); j < int(math.Ceil(x1)); j++ {
								cover := (math.Min(float64(i+1), y1) - math.Max(float64(i), y0)) *
									(math.Min(float64(j+1), x1) - math.Max(float64(j), x0))
								v += cover * at(b, min(i, ih-1), min(j, iw-1), k)
							}
						}
						v /= float64(sh) * float64(sw)
					}
					out[((b*oh+y)*ow+xx)*c+k] = v
				}
			}
		}
	}
	return out
}

var referenceShapes = []struct{ n, ih, iw, c, oh, ow int }{
	{1, 7, 9, 2, 3, 4},     // odd downscale
	{2, 5, 6, 1, 11, 13},   // upscale
	{1, 8, 12, 3, 4, 4},    // integer factors 2 and 3
	{1, 6, 10, 2, 6, 5},    // one identity axis
	{1, 4, 4, 1, 7, 3},     // up on one axis, down on the other
	{1, 1, 5, 1, 3, 2},     // a size-1 axis
	{1, 12, 12, 2, 5, 7},   // many phases (7/12): banded falls back to dense
	{1, 30, 30, 1, 15, 15}, // 2x2 mean
	{1, 16, 16, 1, 4, 4},   // factor 4
	{1, 9, 9, 1, 6, 6},     // 2/3
}

func randomData(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float64, n)
	for i := range x {
		x[i] = r.Float64()*2 - 0.5
	}
	return x
}

func TestMethodsAgainstReference(t *testing.T) {
	for _, m := range []Method{Bilinear, Bicubic, Nearest, Area} {
		for si, s := range referenceShapes {
			shape := []int{s.n, s.ih, s.iw, s.c}
			x64 := randomData(s.n*s.ih*s.iw*s.c, uint64(si))
			x32 := make([]float32, len(x64))
			for i, v := range x64 {
				x32[i] = float32(v)
				x64[i] = float64(x32[i])
			}
			want := refResize(x64, shape, s.oh, s.ow, m)
			want32 := make([]float32, len(want))
			for i, v := range want {
				want32[i] = float32(v)
			}
			for _, f := range formulations {
				name := fmt.Sprintf("%s/%v->%dx%d/%s", m, shape, s.oh, s.ow, f)
				got := runResize(t, x32, shape, s.oh, s.ow, m, f)
				assertClose(t, name, got, want32, float32Tol(t))
			}
		}
	}
}

// TestKnownValues pins a few hand-checkable values so a shared mistake in the reference and the
// op cannot hide: 300->150 bilinear is a 2x2 mean, and TensorFlow's documented 4->3 area example.
func TestKnownValues(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16} // 4x4
	for _, f := range formulations {
		got := runResize(t, x, []int{1, 4, 4, 1}, 2, 2, Bilinear, f)
		assertClose(t, "bilinear 2x2 mean/"+f.String(), got, []float32{3.5, 5.5, 11.5, 13.5}, 1e-6)
		// Area 4->3 on a row: out0 = (in0 + in1/3)*0.75, out1 = (2/3 in1 + 2/3 in2)*0.75, out2 = (in2/3 + in3)*0.75.
		row := []float32{1, 2, 3, 4}
		got = runResize(t, row, []int{1, 1, 4, 1}, 1, 3, Area, f)
		assertClose(t, "area 4->3/"+f.String(), got, []float32{(1 + 2.0/3) * 0.75, (4.0/3 + 2) * 0.75, (1 + 4) * 0.75}, 1e-6)
		got = runResize(t, row, []int{1, 1, 4, 1}, 1, 8, Nearest, f)
		assertClose(t, "nearest 4->8/"+f.String(), got, []float32{1, 1, 2, 2, 3, 3, 4, 4}, 0)
	}
}

// TestGradientsFiniteDifferences checks d(sum(R*resize(x)))/dx against central differences, in
// float64, for every method and formulation.
func TestGradientsFiniteDifferences(t *testing.T) {
	b := testBackend(t)
	shapes := []struct{ n, ih, iw, c, oh, ow int }{{1, 5, 6, 2, 3, 4}, {1, 3, 4, 1, 5, 7}, {1, 6, 6, 1, 3, 2}}
	for _, m := range []Method{Bilinear, Bicubic, Nearest, Area} {
		for si, s := range shapes {
			for _, f := range formulations {
				shape := []int{s.n, s.ih, s.iw, s.c}
				x := randomData(s.n*s.ih*s.iw*s.c, uint64(100+si))
				r := randomData(s.n*s.oh*s.ow*s.c, uint64(200+si))
				rT := tensors.FromFlatDataAndDimensions(r, s.n, s.oh, s.ow, s.c)
				lossAndGrad := MustNewExec(b, func(x, r *Node) (*Node, *Node) {
					loss := ReduceAllSum(Mul(ResizeWith(x, s.oh, s.ow, m, f), r))
					return loss, Gradient(loss, x)[0]
				})
				outs := lossAndGrad.MustExec(tensors.FromFlatDataAndDimensions(x, shape...), rT)
				grad := tensors.MustCopyFlatData[float64](outs[1])
				lossAt := func(xv []float64) float64 {
					o := lossAndGrad.MustExec(tensors.FromFlatDataAndDimensions(xv, shape...), rT)
					return tensors.MustCopyFlatData[float64](o[0])[0]
				}
				numeric := backendtest.CentralDifferences(x, 1e-4, lossAt)
				assertClose(t, fmt.Sprintf("grad %s/%v->%dx%d/%s", m, shape, s.oh, s.ow, f), grad, numeric, 1e-7)
				lossAndGrad.Finalize()
			}
		}
	}
}

func TestParseMethod(t *testing.T) {
	for _, n := range []string{"bilinear", "BICUBIC", "nearest", "area"} {
		m, err := ParseMethod(n)
		if err != nil {
			t.Fatalf("ParseMethod(%q): %v", n, err)
		}
		if m.String() == "" || !strings.EqualFold(m.String(), n) {
			t.Errorf("ParseMethod(%q) = %v", n, m)
		}
	}
	if _, err := ParseMethod("lanczos3"); err == nil {
		t.Error("ParseMethod(lanczos3) gave no error")
	}
}

// TestBFloat16 runs both formulations on bfloat16 images (half the memory traffic on GPUs) and
// compares with float32 within bfloat16's precision.
func TestBFloat16(t *testing.T) {
	b := testBackend(t)
	if b.Name() == "onnxruntime" {
		t.Skip("ONNX Runtime's CPU kernels have no bfloat16 matmuls or convolutions")
	}
	x := randomData(2*12*10*3, 77)
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
	}
	for _, m := range []Method{Bilinear, Bicubic, Area} {
		for _, f := range formulations {
			want := runResize(t, x32, []int{2, 12, 10, 3}, 6, 7, m, f)
			y, err := ExecOnce(b, func(x *Node) *Node {
				return ConvertDType(ResizeWith(ConvertDType(x, dtypes.BFloat16), 6, 7, m, f), dtypes.Float32)
			}, tensors.FromFlatDataAndDimensions(x32, 2, 12, 10, 3))
			if err != nil {
				t.Fatalf("%s/%s bfloat16: %v", m, f, err)
			}
			assertClose(t, fmt.Sprintf("bfloat16 %s/%s", m, f), tensors.MustCopyFlatData[float32](y), want, 3e-2)
		}
	}
}
