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
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/internal/backendtest"
)

// bnTrainFloat32 runs BatchNorm in a training graph on float32 x and returns, as float64, its output,
// the gradient of sum(r*BN(x)) wrt x, and the gradients wrt gamma and beta (per channel).
func bnTrainFloat32(b compute.Backend, x, r []float32, dims []int) (y, g, gGamma, gBeta []float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	store := model.NewStore()
	exec := model.MustNewExec(b, store, func(scope *model.Scope, x, r *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		y := BatchNorm(scope.In("bn"), x).Done()
		grads := Gradient(ReduceAllSum(Mul(y, r)), x, store.GetVariable("/bn/gamma").NodeValue(g), store.GetVariable("/bn/beta").NodeValue(g))
		out := []*Node{ConvertDType(y, dtypes.Float64)}
		for _, gr := range grads {
			out = append(out, ConvertDType(gr, dtypes.Float64))
		}
		return out
	})
	outs := exec.MustExec(tensors.FromFlatDataAndDimensions(x, dims...), tensors.FromFlatDataAndDimensions(r, dims...))
	v := func(i int) []float64 { return tensors.MustCopyFlatData[float64](outs[i]) }
	return v(0), v(1), v(2), v(3), nil
}

func maxAbsDiff(got, want []float64) float64 {
	m := 0.0
	for i := range got {
		d := math.Abs(got[i] - want[i])
		if math.IsNaN(d) {
			return math.NaN()
		}
		m = max(m, d)
	}
	return m
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}

// TestBatchNormLargeOffset: float32 batch norm (training mode) of inputs far from zero mean,
// x = offset + N(0, 1) per channel, at the tutorial's batch and size (64 images of 300 rows: 19,200
// rows of 32 values to sum), on every backend. The output and the
// input gradient of sum(r*BN(x)) are compared with hostBatchNorm in float64 on the same
// float32-rounded inputs.
//
// Tolerances are what float32 can achieve, not what ours does:
//   - output, max |error|: x - mean is exact in float32 here (Sterbenz), so an implementation whose
//     mean is correctly rounded errs by half an ulp of the mean, at most |offset|*2^-24, over the
//     std; twice that for one that rounds the sum and the division separately, plus the rounding of
//     the normalised value (|y| up to ~5.5, three operations: 16 half-ulps of 1);
//   - gradient, relative (Euclidean): inv*(r - mean(r)) - (x - mean)*inv³*mean(r*(x - mean)) is a
//     few float32 operations per element: 4 half-ulps. The statistics' error enters only through
//     the last term, scaled by mean(r*(x - mean)) ~ 1e-3 for random r.
//
// hostBatchNormFloat32, a float32 implementation that accumulates in float64, must meet both (the
// tolerances are reachable): it measured output errors 5.4e-7, 2.6e-6 and 2.4e-5 at offsets 0, 100
// and 1000, and gradient errors 4.9e-8 to 7.3e-8.
func TestBatchNormLargeOffset(t *testing.T) {
	dims := []int{64, 300, 16, 2}
	n := 64 * 300 * 16 * 2
	const std = 1.0
	for _, offset := range []float64{0, 100, 1000} {
		rng := rand.New(rand.NewPCG(uint64(offset)+1, 77))
		x32, r32 := make([]float32, n), make([]float32, n)
		x, r := make([]float64, n), make([]float64, n)
		for i := range x32 {
			x32[i] = float32(offset + std*rng.NormFloat64())
			r32[i] = float32(rng.NormFloat64())
			x[i], r[i] = float64(x32[i]), float64(r32[i])
		}
		wantY, wantG, _ := hostBatchNorm(x, 2, 1e-3, r)
		wantGamma, wantBeta := hostBatchNormParamGrads(x, r, 2, 1e-3)
		tolY := (2*offset/std + 16) * 0x1p-24
		const tolG = 4 * 0x1p-24
		// tolParam: 16 half-ulps for beta's gradient (a sum of float32 values, exact in float64) and
		// at least that for gamma's, else 3x what float32 achieves (tolGamma below).
		const tolParam = 16 * 0x1p-24
		check := func(who string, y, g []float64) {
			ey, eg := maxAbsDiff(y, wantY), backendtest.RelDiff(g, wantG)
			t.Logf("offset %g, %s: output max |error| %.3g (tolerance %.3g), gradient relative error %.3g (tolerance %.3g)",
				offset, who, ey, tolY, eg, tolG)
			if !(ey <= tolY) || !(eg <= tolG) {
				t.Errorf("offset %g, %s: output max |error| %.3g (tolerance %.3g), gradient relative error %.3g (tolerance %.3g): "+
					"worse than float32 allows", offset, who, ey, tolY, eg, tolG)
			}
		}
		hy, hg := hostBatchNormFloat32(x32, r32, 2, 1e-3)
		check("accurate host float32", hy, hg)
		// What float32 achieves for gamma's gradient: the terms r*y rounded to float32 (y from the
		// accurate float32 implementation), summed exactly.
		hostGamma := make([]float64, 2)
		for i := range hy {
			hostGamma[i%2] += float64(r32[i] * float32(hy[i]))
		}
		tolGamma := max(tolParam, 3*backendtest.RelDiff(hostGamma, wantGamma))
		for _, be := range backendtest.All(t) {
			y, g, gGamma, gBeta, err := bnTrainFloat32(be.Backend, x32, r32, dims)
			if err != nil {
				t.Errorf("offset %g on %s: %v", offset, be.Name, err)
				continue
			}
			check("BatchNorm on "+be.Name, y, g)
			// gamma's and beta's gradients are sums of 307,200 terms per channel: summed at once in
			// float32 they were 1.5e-6 to 1.3e-5 off, split over N, H and W 2.2e-7 to 4.3e-7.
			eg, eb := backendtest.RelDiff(gGamma, wantGamma), backendtest.RelDiff(gBeta, wantBeta)
			t.Logf("offset %g, BatchNorm on %s: gamma's gradient relative error %.3g (tolerance %.3g), beta's %.3g (tolerance %.3g)",
				offset, be.Name, eg, tolGamma, eb, tolParam)
			if !(eg <= tolGamma) || !(eb <= tolParam) {
				t.Errorf("offset %g, BatchNorm on %s: gamma's gradient relative error %.3g (tolerance %.3g), beta's %.3g (tolerance %.3g)",
					offset, be.Name, eg, tolGamma, eb, tolParam)
			}
		}
	}
}

// hostBatchNormFloat32 is hostBatchNorm as a float32 implementation that accumulates accurately
// would compute it: every value and every elementwise operation in float32, the sums of the
// statistics in float64, rounded to float32 once. It shows what float32 can achieve on the data,
// the bound the graph is held to.
func hostBatchNormFloat32(x, r []float32, c int, eps float32) (y, grad []float64) {
	n := float64(len(x) / c)
	sum := func(term func(i int) float64) []float32 {
		s := make([]float64, c)
		for i := range x {
			s[i%c] += term(i)
		}
		out := make([]float32, c)
		for ch := range s {
			out[ch] = float32(s[ch] / n)
		}
		return out
	}
	mean := sum(func(i int) float64 { return float64(x[i]) })
	d := make([]float32, len(x))
	for i := range x {
		d[i] = x[i] - mean[i%c]
	}
	variance := sum(func(i int) float64 { return float64(d[i] * d[i]) })
	meanR := sum(func(i int) float64 { return float64(r[i]) })
	meanRD := sum(func(i int) float64 { return float64(r[i] * d[i]) })
	inv := make([]float32, c)
	for ch := range inv {
		inv[ch] = 1 / float32(math.Sqrt(float64(variance[ch]+eps)))
	}
	y, grad = make([]float64, len(x)), make([]float64, len(x))
	for i := range x {
		ch := i % c
		y[i] = float64(d[i] * inv[ch])
		grad[i] = float64(inv[ch]*(r[i]-meanR[ch]) - d[i]*(inv[ch]*inv[ch]*inv[ch])*meanRD[ch])
	}
	return y, grad
}

// hostBatchNormParamGrads is the gradient of sum(r*BN(x)) wrt gamma and beta (per channel: sum of
// r*xhat and of r), in float64, for gamma 1 and beta 0.
func hostBatchNormParamGrads(x, r []float64, c int, eps float64) (gGamma, gBeta []float64) {
	n := float64(len(x) / c)
	mean, variance := make([]float64, c), make([]float64, c)
	for i, v := range x {
		mean[i%c] += v / n
	}
	for i, v := range x {
		variance[i%c] += (v - mean[i%c]) * (v - mean[i%c]) / n
	}
	gGamma, gBeta = make([]float64, c), make([]float64, c)
	for i, v := range x {
		gGamma[i%c] += r[i] * (v - mean[i%c]) / math.Sqrt(variance[i%c]+eps)
		gBeta[i%c] += r[i]
	}
	return gGamma, gBeta
}
