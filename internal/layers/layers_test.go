package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/norm"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/internal/backendtest"
)

func newBackend(t *testing.T) compute.Backend {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randn(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()*1.5 + 0.7
	}
	return v
}

// bnInputGradient returns the loss sum(R*BN(x)) and its gradient wrt x, in a training graph.
func bnInputGradient(t *testing.T, b compute.Backend, build func(scope *model.Scope, x *Node) *Node,
	x, r []float64, dims []int) (loss func([]float64) float64, grad []float64) {
	store := model.NewStore()
	exec := model.MustNewExec(b, store, func(scope *model.Scope, x, r *Node) (*Node, *Node) {
		scope.Store().SetTraining(x.Graph(), true)
		l := ReduceAllSum(Mul(build(scope.In("bn"), x), r))
		return l, Gradient(l, x)[0]
	})
	rT := tensors.FromFlatDataAndDimensions(r, dims...)
	outs := exec.MustExec(tensors.FromFlatDataAndDimensions(x, dims...), rT)
	grad = tensors.MustCopyFlatData[float64](outs[1])
	loss = func(xv []float64) float64 {
		o := exec.MustExec(tensors.FromFlatDataAndDimensions(xv, dims...), rT)
		return tensors.MustCopyFlatData[float64](o[0])[0]
	}
	return loss, grad
}

// TestBatchNormTrueGradient proves our batch norm back-propagates through the batch statistics
// (finite differences and the closed form of hostBatchNorm), and that GoMLX's decomposed batch
// norm does not: its gradient is the one with the statistics held constant. If a GoMLX upgrade
// fixes that, the last check fails and the package doc can say so.
func TestBatchNormTrueGradient(t *testing.T) {
	b := newBackend(t)
	dims := []int{3, 4, 5, 2}
	n := 3 * 4 * 5 * 2
	x, r := randn(n, 1), randn(n, 2)
	_, closed, stopGrad := hostBatchNorm(x, 2, 1e-3, r)

	// Central differences with step 1e-5 of a float64 loss of size ~10: rounding ~1e-15/1e-5 =
	// 1e-10 per element, truncation ~1e-10 (measured 3.4e-10 to 5e-10 overall): 1e-7 is 300x that, while
	// leaving out the statistics is a 47% error here.
	loss, grad := bnInputGradient(t, b, func(s *model.Scope, x *Node) *Node { return BatchNorm(s, x).Done() }, x, r, dims)
	numeric := backendtest.CentralDifferences(x, 1e-5, loss)
	if e := backendtest.RelDiff(grad, numeric); e > 1e-7 {
		t.Errorf("batch norm input gradient: relative error %.3g vs finite differences (want < 1e-7)", e)
	}
	// The closed form, evaluated in float64 on the host, has only float64 rounding (1e-15 relative
	// per operation over 60 rows).
	if e := backendtest.RelDiff(grad, closed); e > 1e-12 {
		t.Errorf("batch norm input gradient: relative error %.3g vs the closed form (want < 1e-12)", e)
	}
	// The per-channel sum of dL/dx of a batch-normalised input is zero.
	for ch := range 2 {
		s := 0.0
		for i := ch; i < n; i += 2 {
			s += grad[i]
		}
		if math.Abs(s) > 1e-9 {
			t.Errorf("channel %d: sum of input gradients %.3g, want 0", ch, s)
		}
	}

	gLoss, gGrad := bnInputGradient(t, b, func(s *model.Scope, x *Node) *Node {
		return norm.BatchNorm(s, x, -1).UseBackendInference(false).Done()
	}, x, r, dims)
	gErr := backendtest.RelDiff(gGrad, backendtest.CentralDifferences(x, 1e-5, gLoss))
	want := backendtest.RelDiff(stopGrad, closed) // what leaving out the statistics costs, on the host
	t.Logf("GoMLX v0.28 decomposed batch norm: input-gradient relative error %.1f%% (statistics held constant: %.1f%%; ours: %.2g)",
		100*gErr, 100*want, backendtest.RelDiff(grad, numeric))
	if e := backendtest.RelDiff(gGrad, stopGrad); e > 1e-12 || gErr < 0.1 {
		t.Errorf("GoMLX's decomposed batch norm: gradient %.3g off the stop-gradient form and %.3g off finite differences: "+
			"it no longer holds the statistics constant; update the package doc (layers.go) and GOMLX.md", e, gErr)
	}
}

// TestBatchNormStatistics checks the Keras semantics: training normalises with the batch's biased
// variance and moves the averages by 1-momentum; inference uses the moving averages.
func TestBatchNormStatistics(t *testing.T) {
	b := newBackend(t)
	store := model.NewStore()
	x := []float32{1, 10, 3, 20, 5, 30, 7, 40} // [4,1,1,2]: channel 0 = 1,3,5,7; channel 1 = 10..40
	xT := func() *tensors.Tensor { return tensors.FromFlatDataAndDimensions(x, 4, 1, 1, 2) }
	train := model.MustNewExec(b, store, func(scope *model.Scope, x *Node) *Node {
		scope.Store().SetTraining(x.Graph(), true)
		return BatchNorm(scope.In("bn"), x).Done()
	})
	y := tensors.MustCopyFlatData[float32](train.MustExec(xT())[0])
	// channel 0: mean 4, biased variance 5 -> (1-4)/sqrt(5.001).
	if want := float32(-3 / math.Sqrt(5.001)); math.Abs(float64(y[0]-want)) > 1e-6 {
		t.Errorf("training output %v, want %v", y[0], want)
	}
	mm := tensors.MustCopyFlatData[float32](store.GetVariable("/bn/moving_mean").MustValue())
	mv := tensors.MustCopyFlatData[float32](store.GetVariable("/bn/moving_variance").MustValue())
	if math.Abs(float64(mm[0]-0.04)) > 1e-6 || math.Abs(float64(mm[1]-0.25)) > 1e-6 {
		t.Errorf("moving_mean %v, want [0.04 0.25]", mm)
	}
	if want := float32(0.99 + 0.01*5); math.Abs(float64(mv[0]-want)) > 1e-6 {
		t.Errorf("moving_variance[0] %v, want %v", mv[0], want)
	}
	infer := model.MustNewExec(b, store, func(scope *model.Scope, x *Node) *Node {
		return BatchNorm(scope.In("bn"), x).Done()
	})
	yi := tensors.MustCopyFlatData[float32](infer.MustExec(xT())[0])
	if want := float32((1 - 0.04) / math.Sqrt(float64(mv[0])+1e-3)); math.Abs(float64(yi[0]-want)) > 1e-5 {
		t.Errorf("inference output %v, want %v", yi[0], want)
	}
}

// TestConvSameAndParams: Conv's output shape, Keras variable names and glorot-uniform bounds, and
// its values: "same" padding and the bias against the host direct convolution (hostConv), in a
// training graph and in an inference graph (the formulations may differ: convmatmul.go).
func TestConvSameAndParams(t *testing.T) {
	b := newBackend(t)
	dims := []int{2, 9, 7, 3}
	xv := roundToFloat32(randn(2*9*7*3, 4))
	bias := []float32{0.5, -1.25, 2, 0, -0.75} // nonzero (Keras initialises it to zero)
	for _, training := range []bool{true, false} {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(3))
		if _, err := store.CreateVariable("/conv2d/bias", tensors.FromFlatDataAndDimensions(bias, 5)); err != nil {
			t.Fatal(err)
		}
		y := model.MustCallOnce(b, store, func(scope *model.Scope, x *Node) *Node {
			scope.Store().SetTraining(x.Graph(), training)
			return Conv(scope.In("conv2d"), x).Filters(5).Kernel(7).Done()
		}, backendtest.FloatTensor(xv, dims, dtypes.Float32))
		if err := y.Shape().Check(y.DType(), 2, 9, 7, 5); err != nil {
			t.Fatal(err)
		}
		k := store.GetVariable("/conv2d/kernel")
		if k == nil || store.GetVariable("/conv2d/bias") == nil {
			t.Fatal("Keras variable names kernel/bias not found")
		}
		// Glorot uniform: |w| <= sqrt(6/(fan_in+fan_out)) with fan_in = 7*7*3, fan_out = 7*7*5.
		limit := math.Sqrt(6.0 / (7*7*3 + 7*7*5))
		vals := tensors.MustCopyFlatData[float32](k.MustValue())
		maxAbs := 0.0
		kv := make([]float64, len(vals))
		for i, v := range vals {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
			kv[i] = float64(v)
		}
		if maxAbs > limit || maxAbs < 0.8*limit {
			t.Errorf("kernel max |w| = %.4f, want within (0.8, 1] x glorot limit %.4f", maxAbs, limit)
		}
		want, _ := hostConv(xv, dims, kv, []int{7, 7, 3, 5}, 1, 3)
		for i := range want {
			want[i] += float64(bias[i%5])
		}
		got := tensors.MustCopyFlatData[float32](y)
		got64 := make([]float64, len(got))
		worst := 0.0
		for i, v := range got {
			got64[i] = float64(v)
			worst = max(worst, math.Abs(got64[i]-want[i]))
		}
		// Float32 sums of up to 147 products (|x| ~ 2, |w| < 0.16) plus a bias of ~1: rounding
		// ~1e-7 relative (measured below 3e-7); a pad of the wrong size, or a missing bias, is O(1).
		if e := backendtest.RelDiff(got64, want); e > 1e-6 || math.IsNaN(e) {
			t.Errorf("training %v: Conv output %.2g (max |diff| %.2g) off the host convolution with bias (tolerance 1e-6)", training, e, worst)
		} else {
			t.Logf("training %v: Conv output relative error %.2g (max |diff| %.2g) against the host convolution", training, e, worst)
		}
	}
}

func TestLeakyReLU(t *testing.T) {
	b := newBackend(t)
	y := MustExecOnce(b, func(x *Node) *Node { return LeakyReLU(x, 0.2) }, []float32{-2, -0.5, 0, 3})
	got := tensors.MustCopyFlatData[float32](y)
	want := []float32{-0.4, -0.1, 0, 3}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-7 {
			t.Fatalf("LeakyReLU = %v, want %v", got, want)
		}
	}
}

func shapesF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

// TestInitDependsOnlyOnSeedAndPath: a kernel's initial value must not depend on what was created
// before it (the with/without-resizer fairness condition), and must depend on the seed.
func TestInitDependsOnlyOnSeedAndPath(t *testing.T) {
	b := newBackend(t)
	kernel := func(seed int64, extraFirst bool) []float32 {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, seed)
		model.MustCallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
			x := Ones(g, shapesF32(1, 4, 4, 3))
			if extraFirst {
				x = Conv(scope.In("other"), x).Filters(3).Kernel(3).Done()
			}
			return Conv(scope.In("net").In("conv"), x).Filters(4).Kernel(3).Done()
		})
		return tensors.MustCopyFlatData[float32](store.GetVariable("/net/conv/kernel").MustValue())
	}
	a, bb, c := kernel(11, false), kernel(11, true), kernel(12, false)
	same, differ := true, false
	for i := range a {
		same = same && a[i] == bb[i]
		differ = differ || a[i] != c[i]
	}
	if !same {
		t.Error("the same seed gave a different kernel once another layer was created first")
	}
	if !differ {
		t.Error("different seeds gave the same kernel")
	}
}
