package resizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/internal/platform"
	"github.com/learnresize/learnresize/internal/rundir"
)

// countParams builds a resizer on a [1, h, w, 3] input and returns total and trainable parameters.
func countParams(t *testing.T, h, w int, configure func(*Builder) *Builder) (total, trainable int, store *model.Store) {
	t.Helper()
	store = model.NewStore()
	_, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, g *Graph) *Node {
		x := Zeros(g, shapes.Make(dtypes.Float32, 1, h, w, 3))
		return configure(New(scope, x)).Done()
	})
	if err != nil {
		t.Fatal(err)
	}
	for v := range store.IterVariables() {
		if !strings.HasPrefix(v.Path(), "/"+ScopeName+"/") {
			continue
		}
		total += v.Shape().Size()
		if v.Trainable {
			trainable += v.Shape().Size()
		}
	}
	return total, trainable, store
}

func TestParameterCounts(t *testing.T) {
	total, trainable, store := countParams(t, 30, 30, func(b *Builder) *Builder { return b.Target(15, 15) })
	if total != 12163 || trainable != 12035 {
		t.Errorf("default resizer: %d total / %d trainable parameters, want 12,163 / 12,035 (PARITY.md)", total, trainable)
	}
	for _, p := range []string{"conv2d/kernel", "conv2d/bias", "conv2d_5/kernel", "batch_normalization_3/moving_variance"} {
		if store.GetVariable("/"+ScopeName+"/"+p) == nil {
			t.Errorf("variable %s missing: scope names must follow Keras' layer names", p)
		}
	}
	// Filters honoured everywhere, residual blocks chained: 8 filters, 3 blocks.
	// conv7x7(3->8)+b: 1184, conv1x1: 72, BNs: 32 each x (2 + 2*3), 3x3 convs: 576 x (2*3 + 1), conv7x7(8->3)+b: 1179.
	total, _, _ = countParams(t, 20, 20, func(b *Builder) *Builder { return b.Target(10, 10).Filters(8).ResBlocks(3) })
	if want := 1184 + 72 + 32*8 + 576*7 + 1179; total != want {
		t.Errorf("8 filters, 3 blocks: %d parameters, want %d", total, want)
	}
}

func TestHyperparametersFromScope(t *testing.T) {
	store := model.NewStore()
	root := store.RootScope()
	root.SetParam(ParamTargetHeight, 7)
	root.SetParam(ParamTargetWidth, 5)
	root.SetParam(ParamInterpolation, "area")
	y, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, g *Graph) *Node {
		return New(scope, Zeros(g, shapes.Make(dtypes.Float32, 2, 21, 20, 3))).Done()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Shape().Check(dtypes.Float32, 2, 7, 5, 3); err != nil {
		t.Error(err)
	}
	cfg, err := configFromScope(store.Scope("/" + ScopeName))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{7, 5, 16, 1, Area}); cfg != want {
		t.Errorf("recorded config %+v, want %+v", cfg, want)
	}
}

type parityFixture struct {
	Config struct {
		Target    []int `json:"target"`
		Filters   int   `json:"filters"`
		ResBlocks int   `json:"res_blocks"`
	} `json:"config"`
	InputShape  []int     `json:"input_shape"`
	Input       []float32 `json:"input"`
	OutputShape []int     `json:"output_shape"`
	EvalOutput  []float32 `json:"eval_output"`
	TrainOutput []float32 `json:"train_output"`
	Variables   map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"variables"`
	MovingMeanAfterTrain map[string][]float32 `json:"moving_mean_after_train"`
}

// TestForwardParityWithPyTorch loads the weights of a PyTorch resizer (testdata/gen_resizer_parity.py)
// and compares outputs in inference and in training mode, for both resize formulations.
func TestForwardParityWithPyTorch(t *testing.T) {
	for _, file := range []string{"resizer_parity_default.json", "resizer_parity_chained.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		var fx parityFixture
		if err := json.Unmarshal(raw, &fx); err != nil {
			t.Fatal(err)
		}
		for _, form := range formulations {
			for _, training := range []bool{false, true} {
				store := model.NewStore()
				for path, v := range fx.Variables {
					scope, name := model.SplitPath(path)
					if _, err := store.Scope(scope).CreateVariable(name, tensors.FromFlatDataAndDimensions(v.Data, v.Shape...)); err != nil {
						t.Fatal(err)
					}
				}
				x := tensors.FromFlatDataAndDimensions(fx.Input, fx.InputShape...)
				y, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, x *Node) *Node {
					scope.Store().SetTraining(x.Graph(), training)
					return New(scope, x).Target(fx.Config.Target[0], fx.Config.Target[1]).Filters(fx.Config.Filters).
						ResBlocks(fx.Config.ResBlocks).Formulation(form).Done()
				}, x)
				if err != nil {
					t.Fatal(err)
				}
				want := fx.EvalOutput
				if training {
					want = fx.TrainOutput
				}
				name := fmt.Sprintf("%s/%s/training=%v", file, form, training)
				// 2e-4 absolute on outputs up to ~125 (pixel scale): float32 rounding of the convolutions
				// is ~1e-6 relative, and ONNX Runtime sums in another order than the go backend. With
				// TF32 (XLA on a GPU), convolution inputs keep 10 mantissa bits: 5e-3 of the largest
				// output (0.15 on ~53 measured on an H200, 2.9e-3 relative).
				tol := 2e-4
				if backendtest.TF32(testBackend(t)) {
					tol = 5e-3 * maxAbs(want)
				}
				assertClose(t, name, tensors.MustCopyFlatData[float32](y), want, tol)
				if training {
					for path, mm := range fx.MovingMeanAfterTrain {
						got := tensors.MustCopyFlatData[float32](store.GetVariable(path).MustValue())
						assertClose(t, name+" "+path, got, mm, 1e-5)
					}
				}
				for v := range store.IterVariables() {
					if _, ok := fx.Variables[v.Path()]; !ok && strings.HasPrefix(v.Path(), "/"+ScopeName) {
						t.Errorf("%s: variable %s was created, not loaded from the fixture", name, v.Path())
					}
				}
			}
		}
	}
}

func TestTrainingStepLowersLoss(t *testing.T) {
	// A few plain SGD steps on "make the resizer output match a 2x2 mean of the input squared":
	// the loss must go down, showing gradients flow through every layer.
	b := testBackend(t)
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(5))
	data := randomData(2*12*12*3, 9)
	x32 := make([]float32, len(data))
	for i, v := range data {
		x32[i] = float32(v)
	}
	step := model.MustNewExec(b, store, func(scope *model.Scope, x *Node) *Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		y := New(scope, x).Target(6, 6).Filters(4).Done()
		target := Resize(Square(x), 6, 6, Area)
		loss := ReduceAllMean(Square(Sub(y, target)))
		var vars []*model.Variable
		for v := range scope.IterVariables() {
			if v.Trainable && strings.HasPrefix(v.Path(), "/"+ScopeName) {
				vars = append(vars, v)
			}
		}
		nodes := make([]*Node, len(vars))
		for i, v := range vars {
			nodes[i] = v.NodeValue(g)
		}
		grads := Gradient(loss, nodes...)
		for i, v := range vars {
			v.SetNodeValue(Sub(nodes[i], MulScalar(grads[i], 0.05)))
		}
		return loss
	})
	var first, last float32
	for i := range 30 {
		l := tensors.MustCopyFlatData[float32](step.MustExec(tensors.FromFlatDataAndDimensions(x32, 2, 12, 12, 3))[0])[0]
		if math.IsNaN(float64(l)) {
			t.Fatalf("step %d: loss is NaN", i)
		}
		if i == 0 {
			first = l
		}
		last = l
	}
	if !(last < 0.7*first) {
		t.Errorf("loss went from %.4f to %.4f in 30 steps; want at least a 30%% drop", first, last)
	}
}

func TestSaveLoadAndResizeImage(t *testing.T) {
	b := testBackend(t)
	cfg := Config{TargetHeight: 12, TargetWidth: 10, Filters: 4, ResBlocks: 2, Interpolation: Bicubic}
	m, err := NewModel(b, cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	if tot, tr := loaded.NumParams(); tot-tr != 6*2*4 { // 6 batch norms (2 blocks) x 2 moving statistics x 4 filters
		t.Errorf("loaded resizer: %d total, %d trainable parameters", tot, tr)
	}
	if d, _ := NewModel(b, DefaultConfig(), 1); d != nil {
		if tot, tr := d.NumParams(); tot != 12163 || tr != 12035 {
			t.Errorf("default resizer NumParams = %d/%d, want 12,163/12,035", tot, tr)
		}
	}
	if loaded.Config() != cfg {
		t.Fatalf("loaded config %+v, want %+v", loaded.Config(), cfg)
	}
	img := image.NewRGBA(image.Rect(0, 0, 33, 17)) // any size, any aspect ratio
	for y := range 17 {
		for x := range 33 {
			img.Set(x, y, color.RGBA{uint8(7 * x), uint8(13 * y), 128, 255})
		}
	}
	out1, t1, err := m.ResizeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	out2, t2, err := loaded.ResizeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if out1.Bounds().Dx() != 10 || out1.Bounds().Dy() != 12 || out2.Bounds() != out1.Bounds() {
		t.Errorf("output image bounds %v / %v, want 10x12", out1.Bounds(), out2.Bounds())
	}
	if err := t2.Shape().Check(dtypes.Float32, 12, 10, 3); err != nil {
		t.Error(err)
	}
	assertClose(t, "saved vs loaded resizer", tensors.MustCopyFlatData[float32](t2), tensors.MustCopyFlatData[float32](t1), 0)

	// Same seed, same weights; another seed, other weights.
	same, _ := NewModel(b, cfg, 42)
	other, _ := NewModel(b, cfg, 43)
	_, ts, _ := same.ResizeImage(img)
	_, to, _ := other.ResizeImage(img)
	assertClose(t, "same seed", tensors.MustCopyFlatData[float32](ts), tensors.MustCopyFlatData[float32](t1), 0)
	if d := maxDiff(tensors.MustCopyFlatData[float32](to), tensors.MustCopyFlatData[float32](t1)); d == 0 {
		t.Error("different seeds gave identical resizers")
	}
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestBadInput(t *testing.T) {
	b := testBackend(t)
	m, err := NewModel(b, Config{TargetHeight: 4, TargetWidth: 4, Filters: 2, ResBlocks: 1, Interpolation: Bilinear}, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name, want string
		err        func() error
	}{
		{"nil image", "nil image", func() error { _, _, err := m.ResizeImage(nil); return err }},
		{"zero size", "zero size", func() error { _, _, err := m.ResizeImage(image.NewRGBA(image.Rect(0, 0, 0, 5))); return err }},
		{"wrong channels", "channels", func() error {
			_, err := m.ResizeTensor(tensors.FromShape(shapes.Make(dtypes.Float32, 1, 5, 5, 4)))
			return err
		}},
		{"wrong rank", "must be", func() error {
			_, err := m.ResizeTensor(tensors.FromShape(shapes.Make(dtypes.Float32, 5, 5)))
			return err
		}},
		{"wrong dtype", "float32", func() error {
			_, err := m.ResizeTensor(tensors.FromShape(shapes.Make(dtypes.Float64, 1, 5, 5, 3)))
			return err
		}},
		{"missing dir", "no such file", func() error { _, err := Load(b, filepath.Join(dir, "nope")); return err }},
		{"empty dir", "no checkpoints", func() error { _, err := Load(b, t.TempDir()); return err }},
		{"invalid config", "filters", func() error { _, err := NewModel(b, Config{4, 4, 0, 1, Bilinear}, 1); return err }},
		{"nil backend", "nil backend", func() error { _, err := Load(nil, dir); return err }},
	}
	for _, c := range checks {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}

	// A checkpoint whose recorded configuration disagrees with its variables (edited by hand).
	jsons, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(jsons) != 1 {
		t.Fatalf("want one checkpoint json in %s, got %v", dir, jsons)
	}
	raw, _ := os.ReadFile(jsons[0])
	re := regexp.MustCompile(`("Key":\s*"` + ParamFilters + `",\s*"Value":\s*)2`)
	edited := re.ReplaceAllString(string(raw), "${1}3")
	if edited == string(raw) {
		t.Fatalf("could not find the filters hyperparameter in %s", raw)
	}
	if err := os.WriteFile(jsons[0], []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(b, dir); err == nil || !strings.Contains(err.Error(), "has shape") {
		t.Errorf("mismatched checkpoint: error %v, want a shape mismatch", err)
	}

	// A checkpoint of something else entirely.
	other := model.NewStore()
	if _, err := other.RootScope().In("dense").CreateVariable("w", tensors.FromValue([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	odir := t.TempDir()
	saveStore(t, other, odir)
	if _, err := Load(b, odir); err == nil || !strings.Contains(err.Error(), "no learnable resizer") {
		t.Errorf("foreign checkpoint: error %v, want 'no learnable resizer'", err)
	}
}

// maxAbs is the largest |v|.
func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// TestLoadFromRunDirectory: Load takes a training run's folder (the one learnresize train -out and
// compare write) and uses its latest checkpoint, as well as a checkpoint folder; the training input
// size of older runs comes from the training.json beside the checkpoint.
func TestLoadFromRunDirectory(t *testing.T) {
	b := testBackend(t)
	cfg := Config{TargetHeight: 12, TargetWidth: 10, Filters: 4, ResBlocks: 1, Interpolation: Bilinear}
	m, err := NewModel(b, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	ckpt := filepath.Join(run, rundir.CheckpointsDir, "epoch-0003")
	if err := m.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ckpt, rundir.MetaFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, rundir.LatestFile), []byte("epoch-0003\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{run, ckpt} {
		loaded, err := Load(b, dir)
		if err != nil || loaded.Config() != cfg {
			t.Errorf("Load(%s): %v, %v", dir, loaded, err)
		}
		if h, w := loaded.TrainingInput(); h != 0 || w != 0 {
			t.Errorf("Load(%s): training input %dx%d recorded nowhere", dir, h, w)
		}
	}
	// A run from before the resizer recorded its training input: training.json beside it says it.
	meta := `{"config": {"model": {"InputHeight": 77, "InputWidth": 66}}, "epoch": 3}`
	if err := os.WriteFile(filepath.Join(ckpt, rundir.MetaFile), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	if loaded, err := Load(b, run); err != nil {
		t.Error(err)
	} else if h, w := loaded.TrainingInput(); h != 77 || w != 66 {
		t.Errorf("training input %dx%d, training.json says 77x66", h, w)
	}
	if err := os.WriteFile(filepath.Join(run, rundir.LatestFile), []byte("epoch-0009\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(b, run); err == nil || !strings.Contains(err.Error(), "epoch-0009") {
		t.Errorf("LATEST naming a missing checkpoint: %v", err)
	}
}

// resizerGradients returns the gradients of a fixed function of a resizer's output (two chained
// residual blocks) with respect to each trainable variable, by variable path.
func resizerGradients(t *testing.T, checkpoint bool, dtype dtypes.DType) map[string][]float64 {
	t.Helper()
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(23))
	var paths []string
	exec := model.MustNewExec(testBackend(t), store, func(scope *model.Scope, x *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		y := New(scope, x).Target(6, 6).Filters(4).ResBlocks(2).Recompute(checkpoint).Done()
		loss := ReduceAllSum(Mul(Square(y), Iota(g, y.Shape(), 2)))
		var nodes []*Node
		paths = paths[:0]
		for v := range scope.IterVariables() {
			if v.Trainable && strings.HasPrefix(v.Path(), "/"+ScopeName) {
				nodes = append(nodes, v.NodeValue(g))
				paths = append(paths, v.Path())
			}
		}
		return Gradient(loss, nodes...)
	})
	outs := exec.MustExec(backendtest.FloatTensor(randomData(2*12*12*3, 4), []int{2, 12, 12, 3}, dtype))
	grads := map[string][]float64{}
	for i, o := range outs {
		if dtype == dtypes.Float64 {
			grads[paths[i]] = tensors.MustCopyFlatData[float64](o)
			continue
		}
		for _, v := range tensors.MustCopyFlatData[float32](o) {
			grads[paths[i]] = append(grads[paths[i]], float64(v))
		}
	}
	return grads
}

// TestCheckpointGivesIdenticalGradients: with gradient checkpointing the front layers and the
// residual blocks are recomputed in the backward pass; the gradients must not change beyond float32
// rounding (the first batch norm's gamma and beta came out 5e-8 and 9e-8 apart on the CPU backends:
// its output reaches the loss by two paths, whose contributions are summed in another order). XLA
// may fuse the recomputed copy differently: there float64 and 1e-8.
func TestCheckpointGivesIdenticalGradients(t *testing.T) {
	dtype, tol := dtypes.Float32, 1e-6
	if platform.Of(testBackend(t)).XLA() {
		dtype, tol = dtypes.Float64, 1e-8
	}
	plain, ckpt := resizerGradients(t, false, dtype), resizerGradients(t, true, dtype)
	if len(plain) < 15 || len(plain) != len(ckpt) {
		t.Fatalf("%d vs %d gradients", len(plain), len(ckpt))
	}
	nonZero := 0
	for path, g := range plain {
		c := ckpt[path]
		if e := backendtest.RelDiff(c, g); e > tol || math.IsNaN(e) {
			t.Errorf("%s: relative difference %.2g with checkpointing (tolerance %g in %s)", path, e, tol, dtype)
		}
		for _, v := range g {
			if v != 0 {
				nonZero++
				break
			}
		}
	}
	if nonZero < len(plain)-2 { // a BN beta just before a BN can have a zero gradient
		t.Errorf("only %d of %d gradients are non-zero", nonZero, len(plain))
	}
}

// TestRecomputeKeepsTheTailsOwnRecomputation: with Recompute, the convolutions inside the
// recomputed stretches leave the recomputation of their taps (the input's shifted copies that the
// kernel gradient reads) to the stretch, but the ones after the last stretch must recompute their
// own, as they do without Recompute. Once they did not, and at batch 64 on the pure-Go backend the
// final 7x7 convolution's taps (4.2 GB) were kept for the backward pass only when Recompute was
// asked for. Counted in the gradient graph on the go backend (every convolution is a matrix product
// there): the final convolution's 7*7 taps, slices of its input padded to 156x156 (batch 2: 141 MB
// in all, over layers' recomputation bound), made once in the forward pass and once more in the
// backward pass.
func TestRecomputeKeepsTheTailsOwnRecomputation(t *testing.T) {
	var gob compute.Backend
	for _, be := range backendtest.All(t) {
		if be.Name == "go" {
			gob = be.Backend
		}
	}
	for _, recompute := range []bool{false, true} {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(1))
		var count int
		errBuilt := errors.New("built")
		exec, err := model.NewExec(gob, store, func(scope *model.Scope, x *Node) *Node {
			g := x.Graph()
			scope.Store().SetTraining(g, true)
			y := New(scope, x).Target(150, 150).Recompute(recompute).Done()
			var vars []*Node
			for v := range scope.IterVariables() {
				vars = append(vars, v.NodeValue(g))
			}
			// Counted among the nodes the loss and its gradients need, as a training step outputs both
			// (autodiff leaves unused ones behind).
			seen := map[*Node]bool{}
			var walk func(n *Node)
			walk = func(n *Node) {
				if seen[n] {
					return
				}
				seen[n] = true
				if in := n.Inputs(); n.Type() == NodeTypeSlice && len(in) == 1 && in[0].Type() == NodeTypePad &&
					slices.Equal(in[0].Shape().Dimensions, []int{2, 156, 156, 16}) {
					count++
				}
				for _, in := range n.Inputs() {
					walk(in)
				}
			}
			loss := ReduceAllSum(y)
			walk(loss)
			for _, grad := range Gradient(loss, vars...) {
				walk(grad)
			}
			panic(errBuilt) // counted: no need to compile
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = exec.Compile(shapes.Make(dtypes.Float32, 2, 300, 300, 3))
		exec.Finalize()
		if err == nil || !strings.Contains(err.Error(), errBuilt.Error()) {
			t.Fatalf("recompute=%v: building the graph: %v", recompute, err)
		}
		if count != 2*7*7 {
			t.Errorf("recompute=%v: the final 7x7 convolution's taps are in the training step %d time(s), want 2*49 (forward, and again in the backward pass)", recompute, count)
		}
	}
}
