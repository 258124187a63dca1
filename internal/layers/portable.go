package layers

import (
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/learnresize/learnresize/internal/platform"
)

// Strided operations and their gradients, written so that they run exactly on every backend.
//
// GoMLX differentiates strided slices and strided pooling with interior padding, and strided
// convolutions with input dilation. The pure-Go and XLA backends run those ops; ONNX Runtime
// (github.com/gomlx/compute-onnx) has neither. Its select-and-scatter (the gradient of max pooling)
// also scatters without adding, so where pooling windows overlap (DenseNet's 3x3/2 max pool) an
// input that is the maximum of two windows receives only one window's gradient: measured 54% off
// on a 10x10 input. And GoMLX's input gradient of a convolution with an even kernel size is off by
// one pixel on every backend (4x4: 140% off finite differences; odd sizes agree to 2e-10).
//
// So everywhere but on XLA the functions below use portable formulations built from reshapes, plain
// slices, pads, transposes, selects and stride-1 convolutions with odd kernels, whose gradients are
// the same kinds of ops. They compute the same values; tests compare values and gradients on every
// backend against finite differences in float64. The pure-Go backend runs GoMLX's native ops too,
// but slower: its ReduceWindow and SelectAndScatter are generic loops (14% of the CPU time of the
// tutorial's training step in a profile), and with the portable forms that step went from 19.8-20.9 s
// to 16.4-17.1 s on 2 cores (docs/BENCHMARKS.md).
// Tests still run the native forms on it (platform.Native): they are what XLA runs.

// EnvPortable is the environment variable that sets the process's default formulation
// (platform.EnvFormulation: unset, the backend's own choice; "0", GoMLX's native ops wherever the
// backend runs them; any other value, the portable forms everywhere). It is read once.
const EnvPortable = platform.EnvFormulation

// ParamFormulation is the hyperparameter (string) that chooses the formulation of the graphs built
// under a scope: "" (unset: the backend's, see platform.FormulationOf), "native" or "portable". The
// model builders (models.Build, resizer, densenet and resnet Done) apply it to their graph with
// ApplyScope, so that each graph can choose its own, whatever the environment says.
const ParamFormulation = "layers_formulation"

type formulationKey struct{}

// ApplyScope gives g the formulation ParamFormulation names under scope, if it is set; an unknown
// value panics (model building reports errors by panicking, as GoMLX does).
func ApplyScope(scope *model.Scope, g *Graph) {
	switch v := model.GetParamOr(scope, ParamFormulation, ""); v {
	case "":
	case "native":
		g.AttachState(formulationKey{}, platform.Native)
	case "portable":
		g.AttachState(formulationKey{}, platform.Portable)
	default:
		exceptions.Panicf("hyperparameter %s=%q: want \"native\", \"portable\" or unset", ParamFormulation, v)
	}
}

// NativeStrided reports whether g uses GoMLX's strided ops and their gradients as GoMLX emits them:
// by the graph's own formulation (ApplyScope), else its backend's (platform.FormulationOf: XLA only
// by default). Elsewhere the portable formulations run.
func NativeStrided(g *Graph) bool {
	f, ok := g.State(formulationKey{}).(platform.Formulation)
	if !ok {
		f = platform.FormulationOf(g.Backend())
	}
	return platform.Of(g.Backend()).NativeStridedWith(f)
}

// NativeStridedOn is NativeStrided for a graph on b that chooses no formulation of its own.
func NativeStridedOn(b compute.Backend) bool {
	return platform.Of(b).NativeStridedWith(platform.FormulationOf(b))
}

// RunsStridedGradients reports whether b runs the ops GoMLX's gradients of strided slices,
// pooling and convolutions need (platform.Kind.RunsStridedGradients).
func RunsStridedGradients(b compute.Backend) bool { return platform.Of(b).RunsStridedGradients() }

// SliceAxisStrided returns count elements of x along axis, starting at start, every stride
// elements: x[..., start : start+(count-1)*stride+1 : stride, ...].
//
// The portable form takes the plain slice [start, start+count*stride), zero-padded at the end when
// it runs past the axis, reshapes the axis into [count, stride] and keeps index 0 of the second.
func SliceAxisStrided(x *Node, axis, start, count, stride int) *Node {
	axis = MustAdjustAxis(axis, x)
	n := x.Shape().Dimensions[axis]
	if start < 0 || count < 1 || stride < 1 || start+(count-1)*stride >= n {
		exceptions.Panicf("layers.SliceAxisStrided: start %d, count %d, stride %d out of range for axis %d of size %d",
			start, count, stride, axis, n)
	}
	if stride == 1 {
		return SliceAxis(x, axis, AxisRange(start, start+count))
	}
	if NativeStrided(x.Graph()) {
		return SliceAxis(x, axis, AxisRange(start, start+(count-1)*stride+1).Stride(stride))
	}
	x = fitAxis(SliceAxis(x, axis, AxisRange(start, min(n, start+count*stride))), axis, count*stride)
	dims := slices.Clone(x.Shape().Dimensions)
	dims[axis] = stride
	dims = slices.Insert(dims, axis, count)
	x = SliceAxis(Reshape(x, dims...), axis+1, AxisElem(0))
	return Reshape(x, slices.Delete(dims, axis+1, axis+2)...)
}

// fitAxis crops axis to size or zero-pads it at the end up to size.
func fitAxis(x *Node, axis, size int) *Node {
	n := x.Shape().Dimensions[axis]
	switch {
	case n > size:
		return SliceAxis(x, axis, AxisRange(0, size))
	case n < size:
		pads := make([]PadAxis, x.Rank())
		pads[axis] = PadAxis{End: size - n}
		return Pad(x, ScalarZero(x.Graph(), x.DType()), pads...)
	}
	return x
}

// poolTaps returns, for each (row, column) offset of a window x window pooling with the stride
// (valid padding) over NHWC x, the strided slice of x that the offset reads, in row-major order.
func poolTaps(x *Node, window, stride int) []*Node {
	h, w := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
	oh, ow := (h-window)/stride+1, (w-window)/stride+1
	taps := make([]*Node, 0, window*window)
	for i := range window {
		rows := SliceAxisStrided(x, 1, i, oh, stride)
		for j := range window {
			taps = append(taps, SliceAxisStrided(rows, 2, j, ow, stride))
		}
	}
	return taps
}

func checkPool(name string, x *Node, window, stride int) {
	if x.Rank() != 4 || window < 1 || stride < 1 ||
		x.Shape().Dimensions[1] < window || x.Shape().Dimensions[2] < window {
		exceptions.Panicf("layers.%s: want NHWC input at least window x window and positive window and stride, "+
			"got %s, window %d, stride %d", name, x.Shape(), window, stride)
	}
}

// MaxPool2D is a window x window max pooling of NHWC x with the stride and no padding (pad first
// for Keras' "same"), as Keras' MaxPooling2D(padding="valid") and torch.nn.MaxPool2d. Where a
// window holds several equal maxima, the gradient goes to the first in row-major order (XLA's and
// PyTorch's choice).
//
// Portable form: the maximum of the window's strided slices; the output selects each position's
// first maximal slice, so the gradient flows to exactly that input.
func MaxPool2D(x *Node, window, stride int) *Node {
	checkPool("MaxPool2D", x, window, stride)
	if NativeStrided(x.Graph()) {
		return MaxPool(x).Window(window).Strides(stride).NoPadding().Done()
	}
	taps := poolTaps(x, window, stride)
	m := taps[0]
	for _, t := range taps[1:] {
		m = Max(m, t)
	}
	m = StopGradient(m)
	y := taps[len(taps)-1]
	for i := len(taps) - 2; i >= 0; i-- { // the outermost select is the first tap: it wins ties
		y = Where(Equal(taps[i], m), taps[i], y)
	}
	return y
}

// AvgPool2D is a window x window average pooling of NHWC x with the stride and no padding, as
// Keras' AveragePooling2D(padding="valid"): rows and columns that do not fill a window are dropped.
//
// Portable form: when window == stride (DenseNet's transitions) a crop, a reshape and a mean;
// otherwise the mean of the window's strided slices.
func AvgPool2D(x *Node, window, stride int) *Node {
	checkPool("AvgPool2D", x, window, stride)
	if NativeStrided(x.Graph()) {
		return MeanPool(x).Window(window).Strides(stride).NoPadding().Done()
	}
	if window == stride {
		d := x.Shape().Dimensions
		oh, ow := d[1]/window, d[2]/window
		x = SliceAxis(SliceAxis(x, 1, AxisRange(0, oh*window)), 2, AxisRange(0, ow*window))
		return ReduceMean(Reshape(x, d[0], oh, window, ow, window, d[3]), 2, 4)
	}
	taps := poolTaps(x, window, stride)
	sum := taps[0]
	for _, t := range taps[1:] {
		sum = Add(sum, t)
	}
	return MulScalar(sum, 1/float64(window*window))
}

// convValid is a valid (unpadded) convolution of NHWC x with kernel [k, k, in, out] and the
// stride, for a training graph or not. With a stride above 1 it is convStridedPortable everywhere
// but on XLA and in ONNX Runtime's graphs that are not training (no gradient, and its forward
// strided convolution is right): on the pure-Go backend too, because there, in float32, the
// tutorial-shaped training graph (a resizer in front of DenseNet's strided stem, so that the stem's
// input gradient is taken) gave gradients up to 5% off PyTorch's, deterministically, while float64
// matched to 3e-9 and the same convolution alone matched to 6e-7 (training/parity_test.go has the
// case; with the portable form the errors are float32 rounding, as on ONNX Runtime); and its
// strided convolution is a scalar loop.
func convValid(x, kernel *Node, stride int, training, recompute bool) *Node {
	b := x.Graph().Backend()
	native := NativeStrided(x.Graph()) && platform.Of(b).NativeConvolution() || !training && !RunsStridedGradients(b)
	if stride > 1 && !native {
		return convStridedPortable(x, kernel, stride, training, recompute)
	}
	if k := kernel.Shape().Dimensions[0]; stride == 1 && MatmulConv(x, k, training) {
		return convMatmul(x, kernel, 0, recomputes(x, k, training && recompute))
	}
	return Convolve(x, kernel).Strides(stride).NoPadding().Done()
}

// convStridedPortable is a valid (unpadded) convolution of NHWC x with kernel [k, k, in, out] and
// the stride, written as a stride-1 convolution (space to depth): every stride x stride block of
// pixels becomes one pixel with stride² x in channels, and the kernel, zero-padded to a whole
// number of blocks, is rearranged the same way. Written as a convolution, the rearranged kernel has
// an odd number of blocks per side (one more zero block when needed): GoMLX's input gradient is wrong
// for even kernels. As im2col + matmul (convMatmul, whose gradients are slices and matmuls) it keeps
// the even size: DenseNet's 7x7/2 stem becomes 4x4 blocks instead of 5x5, 192 values per im2col
// row on 3 channels instead of 300.
func convStridedPortable(x, kernel *Node, stride int, training, recompute bool) *Node {
	d := x.Shape().Dimensions
	k, in, out := kernel.Shape().Dimensions[0], kernel.Shape().Dimensions[2], kernel.Shape().Dimensions[3]
	s := stride
	oh, ow := (d[1]-k)/s+1, (d[2]-k)/s+1
	kc := (k + s - 1) / s
	matmul := matmulConvShape(x.Graph().Backend(), shapes.Make(x.DType(), d[0], oh-1+kc, ow-1+kc, s*s*in), kc, training)
	if kc%2 == 0 && !matmul {
		kc++
	}
	hc, wc := oh-1+kc, ow-1+kc
	x = fitAxis(fitAxis(x, 1, hc*s), 2, wc*s)
	x = Reshape(x, d[0], hc, s, wc, s, in)
	x = Reshape(TransposeAllAxes(x, 0, 1, 3, 2, 4, 5), d[0], hc, wc, s*s*in)
	kernel = fitAxis(fitAxis(kernel, 0, kc*s), 1, kc*s)
	kernel = Reshape(kernel, kc, s, kc, s, in, out)
	kernel = Reshape(TransposeAllAxes(kernel, 0, 2, 1, 3, 4, 5), kc, kc, s*s*in, out)
	if matmul {
		return convMatmul(x, kernel, 0, recomputes(x, kc, training && recompute))
	}
	return Convolve(x, kernel).NoPadding().Done()
}
