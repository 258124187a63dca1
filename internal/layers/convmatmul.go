package layers

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// Convolutions as matrix multiplications, for the CPU backends.
//
// On ONNX Runtime the kernel gradient of a convolution is itself a convolution whose "kernel" is the
// whole feature map (GoMLX's autodiff swaps batch and channels): for DenseNet-121's 3x3 convolutions
// at batch 8 that took 40-127 ms each, 80% of the training step's convolution time. On the pure-Go
// backend ConvGeneral is a scalar loop (0.6-2 GFLOP/s) while its matrix multiplication is blocked.
// Written as im2col (the k*k shifted copies of the input side by side on the channel axis) and one
// matrix multiplication, the forward pass and both gradients are matrix multiplications, slices,
// pads and concatenations, which both backends run well. The cost is memory: the im2col matrix is
// k*k times the input and is kept for the backward pass, so it is used only for 1x1 kernels (no
// copy at all) and for small kernels on inputs with many channels (DenseNet's 3x3 convolutions,
// the resizer's 3x3 convolutions); the resizer's 7x7 convolutions on 3 or 16 channels keep the
// backend's convolution.

// matmulConvMinChannels is the least number of input channels for which a k x k (k > 1) convolution
// is written as im2col + matmul; matmulConvMaxKernel the largest such k.
const (
	matmulConvMinChannels = 16
	matmulConvMaxKernel   = 3
)

// MatmulConv reports whether convSame writes a stride-1 convolution of NHWC x with a k x k kernel
// as a matrix multiplication: on the pure-Go backend and ONNX Runtime (not XLA), for 1x1 kernels
// and for k <= 3 with at least 16 input channels.
func MatmulConv(x *Node, k int) bool {
	if x.Graph().Backend().Name() == "xla" {
		return false
	}
	return k == 1 || k <= matmulConvMaxKernel && x.Shape().Dimensions[3] >= matmulConvMinChannels
}

// convSame is a stride-1 convolution of NHWC x with kernel [k, k, in, out] (k odd) and Keras "same"
// padding (k/2 on every side).
func convSame(x, kernel *Node) *Node {
	k := kernel.Shape().Dimensions[0]
	if !MatmulConv(x, k) {
		return Convolve(x, kernel).PadSame().Done()
	}
	return convSameMatmul(x, kernel)
}

// convSameMatmul is convSame as im2col + one matrix multiplication.
func convSameMatmul(x, kernel *Node) *Node {
	d := x.Shape().Dimensions
	n, h, w, c := d[0], d[1], d[2], d[3]
	k, f := kernel.Shape().Dimensions[0], kernel.Shape().Dimensions[3]
	cols := x
	if k > 1 {
		p := k / 2
		zero := ScalarZero(x.Graph(), x.DType())
		xp := Pad(x, zero, PadAxis{}, PadAxis{Start: p, End: p}, PadAxis{Start: p, End: p}, PadAxis{})
		taps := make([]*Node, 0, k*k)
		for i := range k {
			for j := range k {
				taps = append(taps, Slice(xp, AxisRange(), AxisRange(i, i+h), AxisRange(j, j+w), AxisRange()))
			}
		}
		// Channel order (i, j, c) is the row-major order of the kernel's [k, k, in] axes.
		cols = Concatenate(taps, -1)
	}
	y := Dot(Reshape(cols, n*h*w, k*k*c), Reshape(kernel, k*k*c, f)).Product()
	return Reshape(y, n, h, w, f)
}
