package resizer

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads better with the ops unqualified.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/learnresize/learnresize/internal/layers"
	"github.com/learnresize/learnresize/internal/platform"
	"github.com/learnresize/learnresize/resample"
)

// Formulation selects how Resize is expressed in the graph. All formulations compute the same
// values (up to float rounding); they differ only in speed on a given backend.
type Formulation int

const (
	// Auto picks Dense on XLA, where matrix multiplications are cheap, and Banded elsewhere (the
	// pure-Go backend and ONNX Runtime), where a few strided slices beat a dense matmul.
	Auto Formulation = iota
	// Dense multiplies by host-built separable interpolation matrices: out = Wh · x · Wwᵀ, one
	// DotGeneral per axis. Forward and backward are plain matmuls, with no gather or scatter.
	Dense
	// Banded writes each axis as a weighted sum of a few strided slices per output phase (for a ratio
	// out/in = p/q in lowest terms, p phases), then interleaves the phases. An integer factor with
	// uniform weights (300→150 bilinear is a 2×2 mean) becomes a reshape and a mean. Its backward pass
	// is pads and sums, again with no scatter. The strided slices are layers.SliceAxisStrided, whose
	// portable form (reshapes, no interior padding in the gradient) runs on ONNX Runtime. Ratios with
	// many phases (p > MaxBandedPhases) fall back to Dense.
	Banded
)

// MaxBandedPhases bounds the number of output phases the Banded formulation accepts on an axis
// before it falls back to Dense (each phase costs a few slices).
const MaxBandedPhases = 8

func (f Formulation) String() string {
	switch f {
	case Auto:
		return "auto"
	case Dense:
		return "dense"
	case Banded:
		return "banded"
	}
	return fmt.Sprintf("Formulation(%d)", int(f))
}

// Resize resizes a batch of images shaped [batch, height, width, channels] (NHWC) to
// [batch, height, width, channels] with tf.image.resize semantics: half-pixel centres,
// antialias=False, float output. It is differentiable with respect to images and works for any
// float dtype, up or down, with any aspect ratio. The formulation is chosen for the backend (Auto).
//
// What resize_test.go checks, for both formulations: in float32, every method within 1e-5 of
// per-pixel references written from TensorFlow's kernels (computed in float64), and bilinear within
// 1e-5 of PyTorch's F.interpolate(bilinear, align_corners=False, antialias=False) on
// testdata/bilinear_golden.json (gen_bilinear.py); 3e-3 on XLA with TF32 matmuls. Gradients match
// float64 central differences to 1e-7, and bfloat16 (bilinear, bicubic, area) matches float32 to
// 3e-2.
//
// Like GoMLX layers, it panics (inside graph building) on invalid arguments.
func Resize(images *Node, height, width int, method Method) *Node {
	return ResizeWith(images, height, width, method, Auto)
}

// ResizeWith is Resize with an explicit formulation.
func ResizeWith(images *Node, height, width int, method Method, form Formulation) *Node {
	if images.Rank() != 4 {
		exceptions.Panicf("resizer.Resize: images must be NHWC (rank 4), got shape %s", images.Shape())
	}
	if !images.DType().IsFloat() {
		exceptions.Panicf("resizer.Resize: images must be a float dtype, got %s (convert first)", images.DType())
	}
	if height <= 0 || width <= 0 {
		exceptions.Panicf("resizer.Resize: target size must be positive, got %dx%d", height, width)
	}
	if form == Auto {
		form = Banded
		if platform.Of(images.Graph().Backend()).DenseResize() {
			form = Dense
		}
	}
	x := images
	for _, ax := range []struct{ axis, size int }{{1, height}, {2, width}} {
		t, err := resample.NewTaps(method, x.Shape().Dimensions[ax.axis], ax.size)
		if err != nil {
			exceptions.Panicf("resizer.Resize: %v", err)
		}
		if t.Identity() {
			continue
		}
		if form == Banded && t.Out/gcd(t.In, t.Out) <= MaxBandedPhases {
			x = resizeAxisBanded(x, ax.axis, t)
		} else {
			x = resizeAxisDense(x, ax.axis, t)
		}
	}
	return x
}

// resizeAxisDense contracts axis with the [out, in] interpolation matrix and puts the result back
// in the same position.
func resizeAxisDense(x *Node, axis int, t *resample.Taps) *Node {
	g := x.Graph()
	w := constOfDType(g, x.DType(), t.Matrix(), t.Out, t.In)
	// DotGeneral output: [out] + x's remaining axes in order; move the new axis back in place.
	y := DotGeneral(w, []int{1}, nil, x, []int{axis}, nil)
	perm := make([]int, 0, x.Rank())
	for i := 1; i <= axis; i++ {
		perm = append(perm, i)
	}
	perm = append(perm, 0)
	for i := axis + 1; i < x.Rank(); i++ {
		perm = append(perm, i)
	}
	return TransposeAllAxes(y, perm...)
}

// meanAsMatmulMaxInner bounds the values after the resized axis (the width axis of NHWC: the
// channels) for which meanAsMatmul replaces the reduction on backends other than XLA and the
// pure-Go one (ONNX Runtime).
const meanAsMatmulMaxInner = 64

// meanAsMatmul is the mean of every q consecutive entries of axis (out groups), followed by inner
// values per entry, as one matrix product: x as [rows, q*inner] times a [q*inner, inner] matrix of
// stacked identities divided by q. ONNX Runtime reduces a middle axis followed by few values (the
// width axis of an image, 3 channels) slowly: [16,32,32,2,3] summed over the pairs took 1.19 ms,
// the same tensor's height pairs (192 values after them) 0.07 ms. With the matrix product the small
// baseline training step went from 16.1-24.6 ms to 14.5-15.6 ms and resizer inference [8,300,300,3]
// -> 150 from 205-225 ms to 188-192 ms (alternating rounds, 2 cores).
func meanAsMatmul(x *Node, axis, out, q, inner int) *Node {
	dims := x.Shape().Dimensions
	m := make([]float64, q*inner*inner)
	for j := range q {
		for c := range inner {
			m[(j*inner+c)*inner+c] = 1 / float64(q)
		}
	}
	w := ConvertDType(Const(x.Graph(), tensors.FromFlatDataAndDimensions(m, q*inner, inner)), x.DType())
	rows := x.Shape().Size() / (q * inner)
	y := Dot(Reshape(x, rows, q*inner), w).Product()
	outDims := slices.Clone(dims)
	outDims[axis] = out
	return Reshape(y, outDims...)
}

// resizeAxisBanded builds the output of one axis as strided slices of the (edge-padded) input.
// (One piece: the phase decomposition, the padding it needs and the weighted sum share their index
// arithmetic; split, each part would need all of it.)
func resizeAxisBanded(x *Node, axis int, t *resample.Taps) *Node {
	g := x.Graph()
	in, out := t.In, t.Out
	d := gcd(in, out)
	p, q := out/d, in/d // out = p*d phases x d steps; each step advances q input pixels.

	// Integer downscale with equal weights and no edge effects: a reshape and a mean (pooling).
	if p == 1 && t.K == q && uniformWindows(t, q) {
		dims := slices.Clone(x.Shape().Dimensions)
		inner := 1
		for _, n := range dims[axis+1:] {
			inner *= n
		}
		if inner <= meanAsMatmulMaxInner && !layers.RunsStridedGradients(g.Backend()) {
			return meanAsMatmul(x, axis, out, q, inner)
		}
		dims = slices.Insert(dims, axis+1, q)
		dims[axis] = out
		return ReduceMean(Reshape(x, dims...), axis+1)
	}

	// Virtual indices may fall outside the axis: pad with copies of the edge values.
	minIdx, maxIdx := 0, in-1
	for o := range out {
		minIdx = min(minIdx, t.Start[o])
		maxIdx = max(maxIdx, t.Start[o]+t.K-1)
	}
	padLo, padHi := -minIdx, maxIdx-(in-1)
	xp := padEdges(x, axis, padLo, padHi)

	phases := make([]*Node, p)
	for r := range p {
		// For o = m*p + r, tap k reads index m*q + dm + k; dm varies by at most a pixel or so.
		lo, hi := t.Start[r], t.Start[r]
		for m := range d {
			dm := t.Start[m*p+r] - m*q
			lo, hi = min(lo, dm), max(hi, dm)
		}
		var sum *Node
		for j := range t.K + hi - lo {
			wv := make([]float64, d)
			nonZero, uniform := false, true
			for m := range d {
				k := j - (t.Start[m*p+r] - m*q - lo)
				if k >= 0 && k < t.K {
					wv[m] = t.Weights[m*p+r][k]
				}
				nonZero = nonZero || wv[m] != 0
				uniform = uniform && wv[m] == wv[0]
			}
			if !nonZero {
				continue
			}
			begin := lo + j + padLo
			part := layers.SliceAxisStrided(xp, axis, begin, d, q)
			if uniform {
				if wv[0] != 1 {
					part = MulScalar(part, wv[0])
				}
			} else {
				bdims := make([]int, x.Rank())
				for i := range bdims {
					bdims[i] = 1
				}
				bdims[axis] = d
				part = Mul(part, constOfDType(g, x.DType(), wv, bdims...))
			}
			if sum == nil {
				sum = part
			} else {
				sum = Add(sum, part)
			}
		}
		if sum == nil { // every weight zero (cannot happen for valid taps, but keep shapes right).
			dims := slices.Clone(x.Shape().Dimensions)
			dims[axis] = d
			sum = Zeros(g, shapes.Make(x.DType(), dims...))
		}
		phases[r] = sum
	}
	if p == 1 {
		return phases[0]
	}
	// Interleave: stack phases after the axis ([.., d, p, ..]) and merge them into out = d*p.
	y := Stack(phases, axis+1)
	dims := slices.Clone(x.Shape().Dimensions)
	dims[axis] = out
	return Reshape(y, dims...)
}

// uniformWindows reports whether output o averages exactly input pixels [o*q, o*q+q) with weight 1/q.
func uniformWindows(t *resample.Taps, q int) bool {
	for o := range t.Out {
		if t.Start[o] != o*q {
			return false
		}
		for _, w := range t.Weights[o] {
			if w != 1/float64(q) {
				return false
			}
		}
	}
	return true
}

// padEdges extends axis by padLo copies of the first slice and padHi copies of the last.
func padEdges(x *Node, axis, padLo, padHi int) *Node {
	if padLo <= 0 && padHi <= 0 {
		return x
	}
	n := x.Shape().Dimensions[axis]
	parts := make([]*Node, 0, 3)
	edge := func(idx, count int) *Node {
		e := SliceAxis(x, axis, AxisElem(idx))
		dims := slices.Clone(x.Shape().Dimensions)
		dims[axis] = count
		return BroadcastToDims(e, dims...)
	}
	if padLo > 0 {
		parts = append(parts, edge(0, padLo))
	}
	parts = append(parts, x)
	if padHi > 0 {
		parts = append(parts, edge(n-1, padHi))
	}
	return Concatenate(parts, axis)
}

// constOfDType makes a constant of the given dtype from float64 values (built on the host in
// that dtype for float32/float64, so that no conversion runs in the graph).
func constOfDType(g *Graph, dtype dtypes.DType, values []float64, dims ...int) *Node {
	switch dtype {
	case dtypes.Float64:
		return ConstTensor(g, tensors.FromFlatDataAndDimensions(values, dims...))
	case dtypes.Float32:
		v32 := make([]float32, len(values))
		for i, v := range values {
			v32[i] = float32(v)
		}
		return ConstTensor(g, tensors.FromFlatDataAndDimensions(v32, dims...))
	}
	return ConvertDType(ConstTensor(g, tensors.FromFlatDataAndDimensions(values, dims...)), dtype)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
