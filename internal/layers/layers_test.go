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

func numericGrad(loss func([]float64) float64, x []float64) []float64 {
	const eps = 1e-5
	out := make([]float64, len(x))
	for i := range x {
		xp := append([]float64(nil), x...)
		xm := append([]float64(nil), x...)
		xp[i] += eps
		xm[i] -= eps
		out[i] = (loss(xp) - loss(xm)) / (2 * eps)
	}
	return out
}

func relErr(got, want []float64) float64 {
	var num, den float64
	for i := range got {
		num += (got[i] - want[i]) * (got[i] - want[i])
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

// TestBatchNormTrueGradient proves our batch norm back-propagates through the batch statistics
// (finite differences), and documents that GoMLX's decomposed batch norm does not.
func TestBatchNormTrueGradient(t *testing.T) {
	b := newBackend(t)
	dims := []int{3, 4, 5, 2}
	n := 3 * 4 * 5 * 2
	x, r := randn(n, 1), randn(n, 2)

	loss, grad := bnInputGradient(t, b, func(s *model.Scope, x *Node) *Node { return BatchNorm(s, x).Done() }, x, r, dims)
	numeric := numericGrad(loss, x)
	if e := relErr(grad, numeric); e > 1e-6 {
		t.Errorf("batch norm input gradient: relative error %.3g vs finite differences (want < 1e-6)", e)
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
	gErr := relErr(gGrad, numericGrad(gLoss, x))
	t.Logf("GoMLX v0.28 decomposed batch norm: input-gradient relative error %.1f%% (ours: %.2g)", 100*gErr, relErr(grad, numeric))
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

func TestConvSameAndParams(t *testing.T) {
	b := newBackend(t)
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(3))
	y := model.MustCallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
		x := Ones(g, shapesF32(2, 9, 7, 3))
		return Conv(scope.In("conv2d"), x).Filters(5).Kernel(7).Done()
	})
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
	for _, v := range vals {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	if maxAbs > limit || maxAbs < 0.8*limit {
		t.Errorf("kernel max |w| = %.4f, want within (0.8, 1] x glorot limit %.4f", maxAbs, limit)
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
