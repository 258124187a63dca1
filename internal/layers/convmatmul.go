package layers

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/learnresize/learnresize/internal/platform"
)

// Convolutions as matrix multiplications, for the CPU backends.
//
// On ONNX Runtime the kernel gradient of a convolution is itself a convolution whose "kernel" is the
// whole feature map (GoMLX's autodiff swaps batch and channels): for DenseNet-121's 3x3 convolutions
// at batch 8 that took 40-127 ms each, 80% of the training step's convolution time. On the pure-Go
// backend ConvGeneral is a scalar loop (0.6-2 GFLOP/s) while its matrix multiplication is blocked.
// Written as matrix multiplications of the input's k*k shifted copies (its taps), the forward pass
// and both gradients are matrix multiplications, slices, pads and sums, which both backends run
// well. Two ways (convMatmul):
//   - on 16 channels or more, one product per tap, summed (convTaps): tap (i, j) of the input times
//     the kernel's [in, out] matrix at (i, j). Nothing k*k times the input exists at once, and the
//     taps are buffers of one shape that ONNX Runtime's allocation planner can pass from one to the
//     next (it reuses a dead value's buffer only for a value of the same shape, internal/memplan).
//     Against the im2col matrix below, at the tutorial's batch 64 on ONNX Runtime the training step
//     took 17.3 s and 17.9 GB against 20.8 s and 20.0 GB (13.0 against 15.4 GB recomputing); on
//     the pure-Go backend at batch 8 14.1 s and 4.23 GB against 17.5 s and 6.5 GB
//     (docs/BENCHMARKS.md).
//   - on fewer channels (the resizer's first 7x7 convolution, on 3; DenseNet's stem on 12), where
//     a product per tap would be a thin k*k-fold pass: im2col, the taps side by side on the channel
//     axis, and one matrix multiplication. The matrix is k*k times the input and is kept for the
//     backward pass, so it is bounded (matmulConvMaxBytes).
// Either way the backward pass's kernel gradient reads the taps (k*k times the input), so large ones
// are recomputed from the input rather than kept (recomputes).
//
// The choice, per convolution (MatmulConv):
//   - XLA: never (its convolutions are fast).
//   - 1x1 kernels: always (a plain matrix product, no copy).
//   - the pure-Go backend: every kernel, a matrix over the bound computed over slices of the batch
//     (its convolution is always the slower way).
//   - elsewhere (ONNX Runtime), in training graphs: kernels up to 5x5 with at least 144 values per
//     im2col row (3x3 on 16 channels; DenseNet's 3x3 layers and space-to-depth stem), within the
//     bound. The resizer's 7x7 convolutions on 3 or 16 channels stay convolutions there: their
//     im2col copies cost more than ONNX Runtime's own convolution.
//   - elsewhere, in graphs that are not training (inference, evaluation): never, and strided
//     convolutions are ONNX Runtime's own too (convValid). No kernel gradient is taken there, and
//     ONNX Runtime's forward convolution beats the copies: resizer inference [8,300,300,3] -> 150
//     went from 282-289 ms to 218-230 ms on 2 cores.

// matmulConvMaxBytes bounds the im2col matrix of one convolution (batch 64 at the tutorial's
// shapes: DenseNet's largest is 426 MB, the resizer's 3x3 ones 830 MB, its 7x7 on the input 3.4 GB).
// On the pure-Go backend a larger one is tiled over the batch (convMatmul) instead: its own
// convolution, the alternative, is a scalar loop 5-50x slower. A variable for tests.
var matmulConvMaxBytes = 1 << 30

const (
	// matmulConvMinRow and matmulConvMaxKernel bound the convolutions written as matmuls on backends
	// other than the pure-Go one.
	matmulConvMinRow    = 144
	matmulConvMaxKernel = 5
	// matmulConvRecomputeBytes is the smallest im2col matrix recomputed in the backward pass
	// instead of kept (convMatmul). Recomputing costs time: with every matrix recomputed, the
	// tutorial's batch-8 training step took 13-14% longer on ONNX Runtime (2.90 s against 2.55 s),
	// where its matrices (at most 104 MB each) cost little memory. From this size up the
	// matrices are most of the memory: at batch 64 (the resizer's 830 MB, DenseNet's first block's
	// 426 MB) the step's values plan at 6.3 GB with this bound, 5.7 GB with every matrix
	// recomputed and 12.2 GB with none (internal/memplan).
	matmulConvRecomputeBytes = 128 << 20
	// matmulConvTapChannels is the fewest input channels for which convMatmul sums a product per
	// kernel tap (convTaps) instead of multiplying one im2col matrix: each product's inner dimension
	// is the channel count.
	matmulConvTapChannels = 16
)

// MatmulConv reports whether convSame and convValid write a stride-1 convolution of NHWC x with a
// k x k kernel as a matrix multiplication, in a training graph or not (see the rules above).
func MatmulConv(x *Node, k int, training bool) bool {
	return matmulConvShape(x.Graph().Backend(), x.Shape(), k, training)
}

// matmulConvShape is MatmulConv for an input of shape s on backend b.
func matmulConvShape(b compute.Backend, s shapes.Shape, k int, training bool) bool {
	if platform.Of(b).NativeConvolution() {
		return false
	}
	if k == 1 {
		return true
	}
	d := s.Dimensions
	bytes := s.Size() * k * k * s.DType.Size()
	if bytes > matmulConvMaxBytes && !sumsTaps(s, k) {
		// Tiled over the batch on the pure-Go backend while one example's matrix fits.
		return platform.Of(b) == platform.Go && d[0] > 0 && bytes/d[0] <= matmulConvMaxBytes
	}
	if platform.Of(b) == platform.Go {
		return true
	}
	return training && k <= matmulConvMaxKernel && d[3]*k*k >= matmulConvMinRow
}

// convSame is a stride-1 convolution of NHWC x with kernel [k, k, in, out] (k odd) and Keras "same"
// padding (k/2 on every side), for a training graph or not; recompute as in convMatmul.
func convSame(x, kernel *Node, training, recompute bool) *Node {
	k := kernel.Shape().Dimensions[0]
	if !MatmulConv(x, k, training) {
		return Convolve(x, kernel).PadSame().Done()
	}
	return convMatmul(x, kernel, k/2, recomputes(x, k, training && recompute))
}

// recomputes reports whether convMatmul should recompute the im2col matrix of a k x k convolution
// of x in the backward pass: in training graphs (want), for matrices of matmulConvRecomputeBytes
// or more.
func recomputes(x *Node, k int, want bool) bool {
	return want && k > 1 && x.Shape().Size()*k*k*x.DType().Size() >= matmulConvRecomputeBytes
}

// convMatmul is a stride-1 convolution with pad zeros on every side, as a sum of a matrix product
// per kernel tap (convTaps) or as im2col + one matrix multiplication (see the rules at the top of
// this file). With recompute (see recomputes) the im2col matrix is recomputed from x in the
// backward pass (GoMLX's gradient checkpointing: x the checkpoint, y the stretch's end) instead of
// kept from the forward pass: it is k*k times x, and x is kept anyway (the layer before reads it
// for its own gradient). At batch 64 the kept matrices were 7 GB of the 12 GB the tutorial training
// step's values need (internal/memplan).
func convMatmul(x, kernel *Node, pad int, recompute bool) *Node {
	k, n := kernel.Shape().Dimensions[0], x.Shape().Dimensions[0]
	if sumsTaps(x.Shape(), k) {
		return convTaps(x, kernel, pad, recompute)
	}
	bytes := x.Shape().Size() * k * k * x.DType().Size()
	if bytes > matmulConvMaxBytes && n > 1 {
		// A matrix over the bound (the pure-Go backend only, matmulConvShape): the convolution of
		// each slice of the batch on its own, as many examples as fit the bound; the same sums,
		// example by example.
		per := max(1, matmulConvMaxBytes/(bytes/n))
		ys := make([]*Node, 0, (n+per-1)/per)
		for s := 0; s < n; s += per {
			ys = append(ys, convMatmulTile(Slice(x, AxisRange(s, min(s+per, n))), kernel, pad, recompute))
		}
		return Concatenate(ys, 0)
	}
	return convMatmulTile(x, kernel, pad, recompute)
}

// convMatmulTile is convMatmul with one im2col matrix for all of x.
func convMatmulTile(x, kernel *Node, pad int, recompute bool) *Node {
	k, f := kernel.Shape().Dimensions[0], kernel.Shape().Dimensions[3]
	return checkpointed(x, recompute && k > 1, func(x *Node) *Node {
		d := x.Shape().Dimensions
		n, c := d[0], d[3]
		cols := x
		h, w := d[1], d[2]
		if k > 1 {
			var tap func(i, j int) *Node
			tap, h, w = inputTaps(x, k, pad)
			taps := make([]*Node, 0, k*k)
			for i := range k {
				for j := range k {
					taps = append(taps, tap(i, j))
				}
			}
			// Channel order (i, j, c) is the row-major order of the kernel's [k, k, in] axes.
			cols = Concatenate(taps, -1)
		}
		return Reshape(Dot(Reshape(cols, n*h*w, k*k*c), Reshape(kernel, k*k*c, f)).Product(), n, h, w, f)
	})
}

// checkpointed is conv(x), with x the checkpoint and the result the end of a stretch recomputed in
// the backward pass (GoMLX's gradient checkpointing) when recompute.
func checkpointed(x *Node, recompute bool, conv func(x *Node) *Node) *Node {
	if !recompute {
		return conv(x)
	}
	return conv(x.Checkpoint()).StopCheckpoint()
}

// inputTaps pads NHWC x with pad zeros on each side of its spatial axes and returns its k x k taps:
// tap(i, j) is the [n, h, w, c] window at offset (i, j), made when asked for (so that a backend
// running nodes in creation order holds only the taps in use), with the output's h and w.
func inputTaps(x *Node, k, pad int) (tap func(i, j int) *Node, h, w int) {
	d := x.Shape().Dimensions
	h, w = d[1]+2*pad-k+1, d[2]+2*pad-k+1
	xp := x
	if pad > 0 {
		zero := ScalarZero(x.Graph(), x.DType())
		xp = Pad(x, zero, PadAxis{}, PadAxis{Start: pad, End: pad}, PadAxis{Start: pad, End: pad}, PadAxis{})
	}
	return func(i, j int) *Node {
		return Slice(xp, AxisRange(), AxisRange(i, i+h), AxisRange(j, j+w), AxisRange())
	}, h, w
}

// sumsTaps reports whether convMatmul writes a k x k convolution of an input of shape s as a sum
// of a product per tap (convTaps) rather than one im2col matrix.
func sumsTaps(s shapes.Shape, k int) bool {
	return k > 1 && s.Rank() == 4 && s.Dimensions[3] >= matmulConvTapChannels
}

// convTaps is convMatmul as a sum over the kernel's taps: y = sum over (i, j) of
// x_padded[:, i:i+h, j:j+w, :] · kernel[i, j], in row-major tap order, each a [n*h*w, in] x [in,
// out] product. The running sum is each Add's second operand so that ONNX Runtime, which visits an
// operation's later-numbered input first (internal/memplan's ONNXRuntime order), computes each
// product after the sum before it and holds two of them at once, not k*k.
func convTaps(x, kernel *Node, pad int, recompute bool) *Node {
	k, f := kernel.Shape().Dimensions[0], kernel.Shape().Dimensions[3]
	return checkpointed(x, recompute, func(x *Node) *Node {
		n, c := x.Shape().Dimensions[0], x.Shape().Dimensions[3]
		tap, h, w := inputTaps(x, k, pad)
		var y *Node
		for i := range k {
			for j := range k {
				p := Dot(Reshape(tap(i, j), n*h*w, c), Reshape(Slice(kernel, AxisElem(i), AxisElem(j)), c, f)).Product()
				if y == nil {
					y = p
				} else {
					y = Add(p, y)
				}
			}
		}
		return Reshape(y, n, h, w, f)
	})
}
