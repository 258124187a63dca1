package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/internal/backendtest"
)

// Reference cases at the kinks: exact zeros into ReLU and LeakyReLU, and ties in max pooling.
// Real photos produce both (black or saturated patches through zero-initialised biases), random
// normal inputs almost never do. Where the function is differentiable the gradients are checked
// against central finite differences in float64; at the kinks, where finite differences are
// undefined, against the derivative PyTorch (and Keras/TensorFlow) use, written out on the host:
// ReLU' (0) = 0, LeakyReLU'(0) = alpha, and a max pooling window's gradient goes to its first
// maximum in row-major order.

// runGrad evaluates f at x (dims, dtype) on b and the gradient of sum(r*f(x)) wrt x, as float64.
func runGrad(b compute.Backend, f func(*Node) *Node, dtype dtypes.DType, x []float64, dims []int, r []float64, rdims []int) (y, g []float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	outs := MustNewExec(b, func(x, r *Node) []*Node {
		y := f(x)
		return []*Node{ConvertDType(y, dtypes.Float64), ConvertDType(Gradient(ReduceAllSum(Mul(y, r)), x)[0], dtypes.Float64)}
	}).MustExec(backendtest.FloatTensor(x, dims, dtype), backendtest.FloatTensor(r, rdims, dtype))
	if got := outs[0].Shape().Dimensions; fmt.Sprint(got) != fmt.Sprint(rdims) {
		return nil, nil, fmt.Errorf("output shape %v, want %v", got, rdims)
	}
	return tensors.MustCopyFlatData[float64](outs[0]), tensors.MustCopyFlatData[float64](outs[1]), nil
}

// kinkInputs are activation inputs with exact zeros of both signs, tiny values on both sides of 0
// and ordinary values, multiples of 1/64 (so that x+1-1 is x in float32 too).
func kinkInputs() []float64 {
	x := []float64{0, math.Copysign(0, -1), 1e-30, -1e-30, 1.5, -2.25, 0, 3, -0.5, 0, 0.125, -7}
	r := rand.New(rand.NewPCG(5, 5))
	for range 36 {
		switch r.IntN(3) {
		case 0:
			x = append(x, 0)
		default:
			x = append(x, math.Round(r.NormFloat64()*64)/64)
		}
	}
	return x // 48 values
}

// TestActivationsAtZero: ReLU and LeakyReLU values and gradients on inputs with exact zeros, fed in
// and made in the graph ((x+1) - 1, as a black patch minus its mean), in float32 and float64 on
// every backend.
func TestActivationsAtZero(t *testing.T) {
	x := kinkInputs()
	dims := []int{2, 4, 6}
	r := values(len(x), 9, false)
	zeros := 0
	for _, v := range x {
		if v == 0 {
			zeros++
		}
	}
	if zeros < 10 {
		t.Fatalf("only %d exact zeros in the inputs", zeros)
	}
	acts := []struct {
		name  string
		f     func(*Node) *Node
		slope float64 // derivative for x <= 0, at 0 included
	}{
		{"ReLU", ReLU, 0},
		{"LeakyReLU(0.2)", func(x *Node) *Node { return LeakyReLU(x, 0.2) }, 0.2},
		{"LeakyReLU(0.3)", func(x *Node) *Node { return LeakyReLU(x, 0.3) }, 0.3},
	}
	for _, be := range backendtest.All(t) {
		for _, a := range acts {
			for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
				// Per element, relative: the rounding of the input (1e-30) or of r to the dtype, of alpha,
				// and of the product: at most 3 half-ulps, 4 with room. ReLU is exact.
				tol := 4 * 0x1p-24
				if dtype == dtypes.Float64 {
					tol = 4 * 0x1p-53
				}
				for _, inGraph := range []bool{false, true} {
					f, xin, at := a.f, x, x // at: the activation's input, computed on the host
					if inGraph {
						f = func(x *Node) *Node { return a.f(AddScalar(x, -1)) }
						xin, at = make([]float64, len(x)), make([]float64, len(x))
						for i, v := range x {
							xin[i] = v + 1 // exact in float32 but for the tiny values, which become 1
							at[i] = xin[i] - 1
						}
					}
					name := fmt.Sprintf("%s on %s %s (zeros made in the graph: %v)", a.name, be.Name, dtype, inGraph)
					y, g, err := runGrad(be.Backend, f, dtype, xin, dims, r, dims)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					for i, v := range at {
						d := a.slope // PyTorch's and Keras' derivative at 0, and below
						if v > 0 {
							d = 1
						}
						wy, wg := d*v, d*r[i]
						if math.Abs(y[i]-wy) > tol*math.Abs(wy) || math.Abs(g[i]-wg) > tol*math.Abs(wg) || math.IsNaN(y[i]+g[i]) {
							t.Errorf("%s: input %g: got value %g, gradient %g; want %g, %g (derivative %g)", name, v, y[i], g[i], wy, wg, d)
						}
					}
				}
				if dtype != dtypes.Float64 {
					continue
				}
				// Finite differences of the backend's own float64 forward pass, per element (the ops are
				// elementwise), with steps that stay on one side of 0: every nonzero input.
				h := make([]float64, len(x))
				xp, xm := make([]float64, len(x)), make([]float64, len(x))
				for i, v := range x {
					if v != 0 {
						h[i] = math.Min(1e-3, math.Abs(v)/2)
					}
					xp[i], xm[i] = v+h[i], v-h[i]
				}
				fwd := MustNewExec(be.Backend, a.f)
				yp := tensors.MustCopyFlatData[float64](fwd.MustExec1(tensors.FromFlatDataAndDimensions(xp, dims...)))
				ym := tensors.MustCopyFlatData[float64](fwd.MustExec1(tensors.FromFlatDataAndDimensions(xm, dims...)))
				_, g, err := runGrad(be.Backend, a.f, dtype, x, dims, r, dims)
				if err != nil {
					t.Errorf("%s on %s: %v", a.name, be.Name, err)
					continue
				}
				for i, v := range x {
					if v == 0 {
						continue
					}
					fd := r[i] * (yp[i] - ym[i]) / (2 * h[i])
					if math.Abs(g[i]-fd) > 1e-9*math.Abs(r[i]) {
						t.Errorf("%s on %s float64: x = %g: gradient %g, finite differences %g", a.name, be.Name, v, g[i], fd)
					}
				}
			}
		}
	}
}

// tieImage is an NHWC input [2, h, w, 3] made of the regions where max pooling meets ties on real
// images: batch 0 channel 0 flat (every value 0.5); channel 1 mostly negative, some exact zeros (ReLU makes
// more, tied with the zero padding); channel 2 saturated (values clipped at 1, many windows
// with several 1s, some zeros); batch 1 few distinct values (0, 1, 2) with some negatives.
func tieImage(h, w int) ([]float64, []int) {
	d := []int{2, h, w, 3}
	x := make([]float64, 2*h*w*3)
	r := rand.New(rand.NewPCG(21, 3))
	for i := range h {
		for j := range w {
			x[nhwc(d, 0, i, j, 0)] = 0.5
			x[nhwc(d, 0, i, j, 1)] = -1 - math.Round(64*r.Float64())/64 // exact in float32
			switch r.IntN(5) {
			case 0:
				x[nhwc(d, 0, i, j, 1)] = 0.25
			case 1:
				x[nhwc(d, 0, i, j, 1)] = 0 // ties with the padding where no 0.25 is near
			}
			x[nhwc(d, 0, i, j, 2)] = math.Min(1, math.Round(4*r.Float64()*1.5)/4)
			for c := range 3 {
				x[nhwc(d, 1, i, j, c)] = float64(r.IntN(4) - 1)
			}
		}
	}
	return x, d
}

// TestMaxPool2DTies: max pooling's values and gradients on inputs full of ties, on every backend, in
// float32 and float64, against the host: the first maximum of each window in row-major order gets
// the window's gradient (PyTorch's and XLA's convention; finite differences are undefined at ties).
// The "stem" cases are DenseNet's (Keras): ReLU, then zero padding, then max pooling, where ReLU's
// zeros tie with the padding's: windows whose first maximum is a padding zero send their gradient
// to the padding, that is nowhere. (Through ReLU, whose derivative at 0 is 0, that tie cannot show
// in the input gradient; the "padded" cases, without ReLU, have the same zeros and negatives, and
// there it shows: the gradient goes to the padding before an image zero, to the image zero before
// a later padding zero.)
func TestMaxPool2DTies(t *testing.T) {
	cases := []struct {
		name           string
		h, w           int
		window, stride int
		pad            int  // zero padding on every side before pooling
		relu           bool // ReLU before the padding
	}{
		{"3x3/2 stem 10x10", 10, 10, 3, 2, 1, true},
		{"3x3/2 stem 9x11", 9, 11, 3, 2, 1, true},
		{"3x3/2 padded, no ReLU, 10x10", 10, 10, 3, 2, 1, false},
		{"3x3/2 11x9", 11, 9, 3, 2, 0, false},
		{"2x2/2 8x8", 8, 8, 2, 2, 0, false},
		{"2x2/2 9x7 (last row and column dropped)", 9, 7, 2, 2, 0, false},
		{"2x2/2 stem 8x8", 8, 8, 2, 2, 1, true},
		{"2x2/2 padded, no ReLU, 8x8", 8, 8, 2, 2, 1, false},
	}
	for _, c := range cases {
		x, xd := tieImage(c.h, c.w)
		// The host reference: z = pad(ReLU(x)), ReLU and padding as the case says; gradient back
		// through both.
		z, zd, pad := x, xd, c.pad
		if c.relu {
			z = make([]float64, len(x))
			for i, v := range x {
				z[i] = max(v, 0)
			}
		}
		z, zd = hostPad2D(z, xd, pad)
		wantY, yd, _ := hostMaxPool(z, zd, c.window, c.stride)
		r := values(len(wantY), 17, false)
		gz := hostMaxPoolGrad(z, zd, c.window, c.stride, r)
		wantG := make([]float64, len(x))
		lastG := make([]float64, len(x)) // the other convention, last maximum: must differ
		gzLast := hostMaxPoolGradLast(z, zd, c.window, c.stride, r)
		for b := range xd[0] {
			for i := range xd[1] {
				for j := range xd[2] {
					for ch := range xd[3] {
						xi, zi := nhwc(xd, b, i, j, ch), nhwc(zd, b, i+pad, j+pad, ch)
						if !c.relu || x[xi] > 0 {
							wantG[xi], lastG[xi] = gz[zi], gzLast[zi]
						}
					}
				}
			}
		}
		if n := padTies(z, zd, pad, c.window, c.stride); pad > 0 && !c.relu && n == 0 {
			t.Fatalf("%s: no window whose maximum, 0, is in the padding and in the image", c.name)
		}
		if e := backendtest.RelDiff(lastG, wantG); e < 0.1 {
			t.Fatalf("%s: the input has too few ties to tell the conventions apart (%.2g)", c.name, e)
		}
		f := func(x *Node) *Node {
			if c.relu {
				x = ReLU(x)
			}
			if c.pad > 0 {
				p := PadAxis{Start: c.pad, End: c.pad}
				x = Pad(x, ScalarZero(x.Graph(), x.DType()), PadAxis{}, p, p, PadAxis{})
			}
			return MaxPool2D(x, c.window, c.stride)
		}
		for _, be := range backendtest.All(t) {
			for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
				y, g, err := runGrad(be.Backend, f, dtype, x, xd, r, yd)
				if err != nil {
					t.Errorf("%s on %s %s: %v", c.name, be.Name, dtype, err)
					continue
				}
				// Values are inputs, exact. A gradient entry sums the r of at most 4 windows: 3 roundings.
				tol := 4 * 0x1p-24
				if dtype == dtypes.Float64 {
					tol = 4 * 0x1p-53
				}
				ey, eg := backendtest.RelDiff(y, wantY), backendtest.RelDiff(g, wantG)
				if ey != 0 || eg > tol || math.IsNaN(eg) {
					t.Errorf("%s on %s %s: values %.2g off, gradient %.2g off the first-maximum rule (tolerance %.2g; "+
						"the last-maximum rule would be %.2g off)", c.name, be.Name, dtype, ey, eg, tol, backendtest.RelDiff(lastG, wantG))
				}
			}
		}
	}
}

// hostMaxPoolGradLast is hostMaxPoolGrad with the other convention (the last maximum of each
// window), to make sure the inputs tell the two apart.
func hostMaxPoolGradLast(x []float64, xd []int, window, stride int, r []float64) []float64 {
	_, _, arg := hostMaxPoolTies(x, xd, window, stride, true)
	return scatterAdd(arg, len(x), r)
}

// padTies counts the windows of a max pooling over z (x zero-padded by pad) whose maximum is 0
// and held both by the padding and by the image.
func padTies(z []float64, zd []int, pad, window, stride int) int {
	oh, ow := (zd[1]-window)/stride+1, (zd[2]-window)/stride+1
	n := 0
	for b := range zd[0] {
		for oi := range oh {
			for oj := range ow {
				for c := range zd[3] {
					m, inPad, inImage := math.Inf(-1), false, false
					for di := range window {
						for dj := range window {
							i, j := oi*stride+di, oj*stride+dj
							v := z[nhwc(zd, b, i, j, c)]
							m = max(m, v)
							if v == 0 {
								border := i < pad || j < pad || i >= zd[1]-pad || j >= zd[2]-pad
								inPad, inImage = inPad || border, inImage || !border
							}
						}
					}
					if m == 0 && inPad && inImage {
						n++
					}
				}
			}
		}
	}
	return n
}
