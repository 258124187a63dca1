package densenet

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/internal/platform"
)

func tiny(b *Builder) *Builder { return b.Blocks(2, 2).Growth(4).Classes(3) }

// gradients returns d(sum(logits*r))/d(every trainable variable) for a tiny DenseNet in training
// mode, computed in dtype (float32 or float64), as float64.
func gradients(t *testing.T, checkpoint bool, dtype dtypes.DType) map[string][]float64 {
	t.Helper()
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(17))
	var paths []string
	exec := model.MustNewExec(testBackend(t), store, func(scope *model.Scope, x *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		logits := tiny(New(scope, x)).Recompute(checkpoint).Done()
		loss := ReduceAllSum(Mul(logits, Iota(g, shapes.Make(dtype, 2, 3), 1)))
		var nodes []*Node
		paths = paths[:0]
		for v := range scope.IterVariables() {
			if v.Trainable && strings.HasPrefix(v.Path(), "/densenet/") {
				nodes = append(nodes, v.NodeValue(g))
				paths = append(paths, v.Path())
			}
		}
		return Gradient(loss, nodes...)
	})
	pixels := make([]float64, 2*32*32*3)
	for i := range pixels {
		pixels[i] = math.Sin(float64(i))
	}
	outs := exec.MustExec(backendtest.FloatTensor(pixels, []int{2, 32, 32, 3}, dtype))
	grads := map[string][]float64{}
	for i, o := range outs {
		o64 := make([]float64, o.Shape().Size())
		if dtype == dtypes.Float64 {
			copy(o64, tensors.MustCopyFlatData[float64](o))
		} else {
			for j, v := range tensors.MustCopyFlatData[float32](o) {
				o64[j] = float64(v)
			}
		}
		grads[paths[i]] = o64
	}
	return grads
}

// TestCheckpointGivesIdenticalGradients: gradient checkpointing recomputes the dense layers in the
// backward pass; the gradients must not change. On the CPU backends they are bit-identical in
// float32. XLA compiles the recomputation into other fusions and cuDNN picks its convolution
// algorithms per graph, so the sums round in another order; the stem batch norm's gamma gradient is a
// sum with heavy cancellation, and on an H100 it came out 1% apart in float32 (TF32 off; 1.6e-8 of a
// 3e-3 gradient on an H200, where other algorithms were chosen). There the test runs in float64,
// where rounding in another order moves that gradient by far less than 1e-8 while a recomputation
// bug would move it by its own size.
func TestCheckpointGivesIdenticalGradients(t *testing.T) {
	b := testBackend(t)
	dtype, tol := dtypes.Float32, 0.0
	if platform.Of(b).XLA() {
		dtype, tol = dtypes.Float64, 1e-8
	}
	plain, ckpt := gradients(t, false, dtype), gradients(t, true, dtype)
	if len(plain) < 10 || len(plain) != len(ckpt) {
		t.Fatalf("%d vs %d gradients", len(plain), len(ckpt))
	}
	nonZero := false
	worst := 0.0
	for path, g := range plain {
		c := ckpt[path]
		for i := range g {
			if tol == 0 && g[i] != c[i] {
				t.Fatalf("%s[%d]: %v without checkpointing, %v with", path, i, g[i], c[i])
			}
			nonZero = nonZero || g[i] != 0
		}
		e := backendtest.RelDiff(c, g)
		if e > tol || math.IsNaN(e) {
			t.Errorf("%s: relative difference %.2g with checkpointing (tolerance %g in %s on %s)", path, e, tol, dtype, b.Name())
		}
		worst = max(worst, e)
	}
	if !nonZero {
		t.Error("all gradients are zero")
	}
	t.Logf("%d gradients in %s on %s, worst relative difference %.2g", len(plain), dtype, b.Name(), worst)
}

func TestOptionsAndErrors(t *testing.T) {
	b := testBackend(t)
	run := func(size int, configure func(*Builder) *Builder) (*tensors.Tensor, error) {
		return model.CallOnce(b, model.NewStore(), func(scope *model.Scope, g *Graph) *Node {
			return configure(New(scope, Zeros(g, shapes.Make(dtypes.Float32, 2, size, size+5, 3)))).Done()
		})
	}
	y, err := run(40, func(b *Builder) *Builder { return tiny(b).IncludeTop(false).Pooling(PoolingNone) })
	if err != nil {
		t.Fatal(err)
	}
	// 40x45: padded 46x51 -> conv 7/2 20x23 -> padded 22x25 -> max pool 3/2 10x12 -> transition 5x6;
	// channels 64+2*4=72 -> 36 -> 36+2*4=44.
	if err := y.Shape().Check(dtypes.Float32, 2, 5, 6, 44); err != nil {
		t.Error(err)
	}
	for _, p := range []Pooling{PoolingAvg, PoolingMax} {
		y, err = run(40, func(b *Builder) *Builder { return tiny(b).IncludeTop(false).Pooling(p) })
		if err != nil || y.Shape().Check(dtypes.Float32, 2, 44) != nil {
			t.Errorf("pooling %d: %v %v", p, y, err)
		}
	}
	y, err = run(32, func(b *Builder) *Builder { return tiny(b).Softmax(true) })
	if err != nil {
		t.Fatal(err)
	}
	p := tensors.MustCopyFlatData[float32](y)
	if s := p[0] + p[1] + p[2]; math.Abs(float64(s)-1) > 1e-5 {
		t.Errorf("softmax outputs sum to %v", s)
	}
	if _, err := run(31, tiny); err == nil || !strings.Contains(err.Error(), "smaller than 32x32") {
		t.Errorf("31x36 input: error %v, want 'smaller than 32x32'", err)
	}
	if _, err := run(32, func(b *Builder) *Builder { return b.Preset("densenet122") }); err == nil || !strings.Contains(err.Error(), "unknown preset") {
		t.Errorf("bad preset: error %v", err)
	}
}
