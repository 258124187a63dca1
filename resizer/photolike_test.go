package resizer

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/internal/backendtest"
)

// photoLike is an NHWC batch [2, h, w, 3] with what photos have and random inputs lack, all values
// exact in float32: batch 0 channel 0 flat (every value 0.5); channel 1 saturated (a ramp clipped
// to [0, 1]: large regions of exact 0s and 1s); channel 2 random with a block of exact zeros;
// batch 1 a black image (exact zeros) with a white patch (1s) and a flat grey one (0.25).
func photoLike(h, w int) []float64 {
	d := []int{2, h, w, 3}
	at := func(b, i, j, c int) int { return ((b*d[1]+i)*d[2]+j)*d[3] + c }
	x := make([]float64, 2*h*w*3)
	r := rand.New(rand.NewPCG(uint64(h*100+w), 13))
	for i := range h {
		for j := range w {
			x[at(0, i, j, 0)] = 0.5
			x[at(0, i, j, 1)] = math.Min(1, math.Max(0, float64(3*(i+j)-h-w)/8))
			x[at(0, i, j, 2)] = math.Round(64*r.Float64()) / 64
			if i < h/2 && j < w/2 {
				x[at(0, i, j, 2)] = 0
			}
			for c := range 3 {
				switch {
				case i >= h/3 && i < 2*h/3 && j >= w/3 && j < 2*w/3:
					x[at(1, i, j, c)] = 1
				case i >= 2*h/3 && j < w/2:
					x[at(1, i, j, c)] = 0.25
				}
			}
		}
	}
	return x
}

// TestResizeOnPhotoLikeInputs: Resize's values and gradients on flat, saturated and exactly zero
// regions, every method and formulation, on every backend, in float32 and float64: values against
// refResize (host float64 loops, per output pixel), gradients of sum(r*resize(x)) against central
// finite differences of refResize. The op is linear, so with a step of 0.5 the differences are
// exact up to float64 rounding (~1e-15).
//
// refResize derives TensorFlow's weights in float64 where the op keeps TensorFlow's float32 ones
// (taps.go: float32 positions, Keys' table): they differ by ~2^-24 relative, so against refResize
// float64 is held to float32's tolerance. Float64 gradients are also checked at float64 precision
// against the op's own float64 forward pass: for a linear op the central difference with step 1
// along input element i is the forward pass of the one-hot image e_i, so one batch of one-hot
// images gives every difference at once.
func TestResizeOnPhotoLikeInputs(t *testing.T) {
	shapes := []struct{ ih, iw, oh, ow int }{
		{12, 10, 6, 5}, // factor 2: the mean path
		{9, 9, 6, 6},   // 2/3: phases
		{7, 9, 3, 4},   // odd downscale
		{5, 6, 11, 13}, // upscale
		{12, 12, 5, 7}, // many phases: banded falls back to dense
	}
	worst := map[string]float64{}
	for _, m := range []Method{Bilinear, Bicubic, Nearest, Area} {
		for _, s := range shapes {
			shape := []int{2, s.ih, s.iw, 3}
			oshape := []int{2, s.oh, s.ow, 3}
			x := photoLike(s.ih, s.iw)
			want := refResize(x, shape, s.oh, s.ow, m)
			r := randomData(len(want), uint64(s.ih*s.oh))
			loss := func(v []float64) float64 {
				y, sum := refResize(v, shape, s.oh, s.ow, m), 0.0
				for i := range y {
					sum += y[i] * r[i]
				}
				return sum
			}
			wantG := backendtest.CentralDifferences(x, 0.5, loss) // the op is linear: any step is exact
			convex := m != Bicubic                                // bilinear, area and nearest average: no overshoot past 0 or 1
			for _, be := range backendtest.All(t) {
				for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
					for _, f := range []Formulation{Auto, Dense, Banded} {
						name := fmt.Sprintf("%s %v->%dx%d %s on %s %s", m, shape, s.oh, s.ow, f, be.Name, dtype)
						y, g, err := resizeAndGrad(be, f, m, dtype, x, shape, r, oshape)
						if err != nil {
							t.Errorf("%s: %v", name, err)
							continue
						}
						// Weights rounded to float32 (see above), products and sums of up to 16 terms per
						// output (bicubic) and per input gradient: 1e-6 relative leaves a 3x margin over
						// the worst measured (2.7e-7, float32 and float64 alike); a wrong tap or edge
						// weight is O(0.1). TF32 (XLA on a GPU) rounds matmul inputs to 2^-11.
						tol := 1e-6
						if dtype == dtypes.Float32 && backendtest.TF32(be.Backend) {
							tol = 3e-3
						}
						ey, eg := backendtest.RelDiff(y, want), backendtest.RelDiff(g, wantG)
						key := be.Name + " " + dtype.String()
						worst[key] = max(worst[key], ey, eg)
						if ey > tol || eg > tol || math.IsNaN(ey+eg) {
							t.Errorf("%s: relative error values %.2g, gradient %.2g (tolerance %g)", name, ey, eg, tol)
						}
						if dtype == dtypes.Float64 {
							exact, err := oneHotGradient(be, f, m, shape, r, oshape)
							if err != nil {
								t.Errorf("%s: one-hot forward: %v", name, err)
							} else if e := backendtest.RelDiff(g, exact); e > 1e-12 || math.IsNaN(e) {
								t.Errorf("%s: gradient %.2g off the differences of its own forward pass (tolerance 1e-12)", name, e)
							} else {
								worst["float64 vs own forward"] = max(worst["float64 vs own forward"], e)
							}
						}
						if convex {
							// Inputs are in [0, 1]: an average may leave it only by the float32 rounding of
							// TensorFlow's weights (area's window bounds, rounded, need not sum to the
							// scale exactly: 1.00000007 seen), not by weights summing above 1.
							slack := max(tol, 1e-6)
							for i, v := range y {
								if v < -slack || v > 1+slack {
									t.Errorf("%s: output %d = %.9g, outside the inputs' range [0, 1]", name, i, v)
									break
								}
							}
						}
					}
				}
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(worst)) {
		t.Logf("%s: worst relative error %.2g", k, worst[k])
	}
}

// oneHotGradient is the gradient of sum(r*resize(x)) wrt x in float64 from forward passes alone:
// column i of the linear op is the resize of the one-hot image e_i (the central difference with
// step 1), all columns in one batch.
func oneHotGradient(be backendtest.Backend, f Formulation, m Method, shape []int, r []float64, oshape []int) (g []float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	in, out := shape[1]*shape[2]*shape[3], oshape[1]*oshape[2]*oshape[3]
	basis := make([]float64, in*in)
	for i := range in {
		basis[i*in+i] = 1
	}
	cols := tensors.MustCopyFlatData[float64](MustExecOnce(be.Backend, func(x *Node) *Node {
		return ResizeWith(x, oshape[1], oshape[2], m, f)
	}, tensors.FromFlatDataAndDimensions(basis, in, shape[1], shape[2], shape[3])))
	g = make([]float64, shape[0]*in)
	for b := range shape[0] {
		for i := range in {
			s := 0.0
			for o := range out {
				s += r[b*out+o] * cols[i*out+o]
			}
			g[b*in+i] = s
		}
	}
	return g, nil
}

// resizeAndGrad runs ResizeWith on be and the gradient of sum(r*resize(x)) wrt x, as float64.
func resizeAndGrad(be backendtest.Backend, f Formulation, m Method, dtype dtypes.DType, x []float64, shape []int, r []float64, oshape []int) (y, g []float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	outs := MustNewExec(be.Backend, func(x, r *Node) []*Node {
		y := ResizeWith(x, oshape[1], oshape[2], m, f)
		grad := Gradient(ReduceAllSum(Mul(y, r)), x)[0]
		return []*Node{ConvertDType(y, dtypes.Float64), ConvertDType(grad, dtypes.Float64)}
	}).MustExec(backendtest.FloatTensor(x, shape, dtype), backendtest.FloatTensor(r, oshape, dtype))
	if got := outs[0].Shape().Dimensions; fmt.Sprint(got) != fmt.Sprint(oshape) {
		return nil, nil, fmt.Errorf("output shape %v, want %v", got, oshape)
	}
	return tensors.MustCopyFlatData[float64](outs[0]), tensors.MustCopyFlatData[float64](outs[1]), nil
}
