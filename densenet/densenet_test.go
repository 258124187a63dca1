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
)

func tiny(b *Builder) *Builder { return b.Blocks(2, 2).Growth(4).Classes(3) }

// gradients returns d(sum(logits*r))/d(every trainable variable) for a tiny DenseNet, in training mode.
func gradients(t *testing.T, checkpoint bool) map[string][]float32 {
	t.Helper()
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(17))
	var paths []string
	exec := model.MustNewExec(testBackend(t), store, func(scope *model.Scope, x *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		logits := tiny(New(scope, x)).Checkpoint(checkpoint).Done()
		loss := ReduceAllSum(Mul(logits, Iota(g, shapes.Make(dtypes.Float32, 2, 3), 1)))
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
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 2, 32, 32, 3))
	tensors.MustMutableFlatData[float32](x, func(f []float32) {
		for i := range f {
			f[i] = float32(math.Sin(float64(i)))
		}
	})
	outs := exec.MustExec(x)
	grads := map[string][]float32{}
	for i, o := range outs {
		grads[paths[i]] = tensors.MustCopyFlatData[float32](o)
	}
	return grads
}

// TestCheckpointGivesIdenticalGradients: gradient checkpointing recomputes the dense layers in the
// backward pass; the gradients must not change. On the CPU backends they are bit-identical. XLA
// compiles the recomputation into other fusions, which round in another order: 1.6e-8 on a gradient
// of 3e-3 measured on an H200, so there each tensor must agree to 1e-5 relative (1e-3 with TF32).
func TestCheckpointGivesIdenticalGradients(t *testing.T) {
	plain, ckpt := gradients(t, false), gradients(t, true)
	if len(plain) < 10 || len(plain) != len(ckpt) {
		t.Fatalf("%d vs %d gradients", len(plain), len(ckpt))
	}
	b := testBackend(t)
	tol := 0.0
	switch {
	case backendtest.TF32(b):
		tol = 1e-3
	case b.Name() == "xla":
		tol = 1e-5
	}
	nonZero := false
	for path, g := range plain {
		c := ckpt[path]
		g64, c64 := make([]float64, len(g)), make([]float64, len(c))
		for i := range g {
			if tol == 0 && g[i] != c[i] {
				t.Fatalf("%s[%d]: %v without checkpointing, %v with", path, i, g[i], c[i])
			}
			g64[i], c64[i] = float64(g[i]), float64(c[i])
			nonZero = nonZero || g[i] != 0
		}
		if e := backendtest.RelDiff(c64, g64); e > tol || math.IsNaN(e) {
			t.Errorf("%s: relative difference %.2g with checkpointing (tolerance %g on %s)", path, e, tol, b.Name())
		}
	}
	if !nonZero {
		t.Error("all gradients are zero")
	}
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
