package training

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/densenet"
	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
)

// fixtureConfig is the model configuration of a training-step fixture, as the generators in
// testdata write it (gen_train_step_parity.py, gen_photo_parity.py).
type fixtureConfig struct {
	Input          []int   `json:"input"` // [height, width]
	Target         int     `json:"target"`
	Batch          int     `json:"batch"`
	Blocks         []int   `json:"blocks"`
	Growth         int     `json:"growth"`
	Filters        int     `json:"filters"`
	ResBlocks      int     `json:"res_blocks"`
	LabelSmoothing float64 `json:"label_smoothing"` // the noise fixture's (the photo fixtures give it beside the configuration)
	// Scope is the backbone's scope: "densenet121" for the preset, else (or when absent) a custom
	// DenseNet of Blocks and Growth named "densenet".
	Scope string `json:"scope"`
}

// model is the configuration as the Go model's, with the learnable resizer or the plain resize.
func (c fixtureConfig) model(withResizer bool) models.Config {
	cfg := models.Config{InputHeight: c.Input[0], InputWidth: c.Input[1], TargetHeight: c.Target, TargetWidth: c.Target,
		Interpolation: resizer.Bilinear, Filters: c.Filters, ResBlocks: c.ResBlocks, Resizer: withResizer, Preset: "densenet121", Classes: 2}
	if c.Scope != "densenet121" {
		cfg.Blocks, cfg.Growth = c.Blocks, c.Growth
	}
	return cfg
}

type trainStepFixture struct {
	Config    fixtureConfig `json:"config"`
	Pixels    []uint8       `json:"pixels"`
	Labels    []int         `json:"labels"`
	Variables map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"variables"`
	Models map[string]struct {
		Loss      float64              `json:"loss"`
		Logits    []float64            `json:"logits"`
		Gradients map[string][]float64 `json:"gradients"`
	} `json:"models"`
}

// loadTrainStepFixture reads testdata/train_step_parity.json.
func loadTrainStepFixture(t *testing.T) *trainStepFixture {
	t.Helper()
	raw, err := os.ReadFile("testdata/train_step_parity.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx trainStepFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	return &fx
}

// oneHot returns the fixture's labels one-hot, [batch, 2], as float32 or float64.
func (fx *trainStepFixture) oneHot(dtype dtypes.DType) *tensors.Tensor {
	v := make([]float64, len(fx.Labels)*2)
	for i, l := range fx.Labels {
		v[i*2+l] = 1
	}
	return backendtest.FloatTensor(v, []int{len(fx.Labels), 2}, dtype)
}

// pixelTensor is the fixture's batch, uint8 NHWC.
func (fx *trainStepFixture) pixelTensor() *tensors.Tensor {
	c := fx.Config
	return tensors.FromFlatDataAndDimensions(slices.Clone(fx.Pixels), c.Batch, c.Input[0], c.Input[1], 3)
}

// trainStepOutputs runs cfg's model on pixels in a training graph, in dtype, with the weights of store,
// and returns the loss (SmoothedCrossEntropy with labels, one-hot), the logits and the gradients of
// the variables at paths. Float32 is the model as the library builds it (models.Build); float64
// assembles the same layers in float64 (models.Build computes in float32).
func trainStepOutputs(t *testing.T, be backendtest.Backend, store *model.Store, cfg models.Config, smoothing float64, paths []string,
	dtype dtypes.DType, pixels, labels *tensors.Tensor) (loss float64, logits []float64, grads [][]float64) {
	t.Helper()
	exec, err := model.NewExec(be.Backend, store, func(scope *model.Scope, x, y *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		var logits *Node
		if dtype == dtypes.Float32 {
			logits = models.Build(scope, x, cfg, nil)
		} else {
			img := MulScalar(ConvertDType(x, dtype), 1.0/255)
			if cfg.Resizer {
				img = resizer.New(scope, img).Target(cfg.TargetHeight, cfg.TargetWidth).Filters(cfg.Filters).ResBlocks(cfg.ResBlocks).Done()
			} else {
				img = resizer.Resize(img, cfg.TargetHeight, cfg.TargetWidth, resizer.Bilinear)
			}
			b := densenet.New(scope, img).Classes(2)
			if len(cfg.Blocks) > 0 {
				b = b.Blocks(cfg.Blocks...).Growth(cfg.Growth).Name(cfg.BackboneScope())
			} else {
				b = b.Preset(cfg.Preset)
			}
			logits = b.Done()
		}
		loss := SmoothedCrossEntropy(ConvertDType(y, dtype), logits, smoothing)
		vars := make([]*Node, len(paths))
		for i, p := range paths {
			vars[i] = store.GetVariable(p).NodeValue(g)
		}
		return append([]*Node{loss, logits}, Gradient(loss, vars...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	outs, err := exec.Exec(pixels, labels)
	if err != nil {
		t.Fatalf("%s on %s: %v", cfg.Name(), be.Name, err)
	}
	values := func(tt *tensors.Tensor) []float64 {
		if tt.DType() != dtype {
			t.Fatalf("%s on %s: output dtype %s, want %s", cfg.Name(), be.Name, tt.DType(), dtype)
		}
		if dtype == dtypes.Float64 {
			return tensors.MustCopyFlatData[float64](tt)
		}
		v := tensors.MustCopyFlatData[float32](tt)
		out := make([]float64, len(v))
		for i := range v {
			out[i] = float64(v[i])
		}
		return out
	}
	for _, o := range outs[2:] {
		grads = append(grads, values(o))
	}
	return values(outs[0])[0], values(outs[1]), grads
}

// store returns a store holding the fixture's weights in dtype.
func (fx *trainStepFixture) store(t *testing.T, dtype dtypes.DType) *model.Store {
	t.Helper()
	store := model.NewStore()
	for path, v := range fx.Variables {
		scope, name := model.SplitPath(path)
		d := make([]float64, len(v.Data))
		for i := range d {
			d[i] = float64(v.Data[i])
		}
		if _, err := store.Scope(scope).CreateVariable(name, backendtest.FloatTensor(d, v.Shape, dtype)); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

// gradientPaths lists, sorted, the variables whose gradients the fixture has for a model.
func (fx *trainStepFixture) gradientPaths(name string) []string {
	paths := make([]string, 0, len(fx.Models[name].Gradients))
	for p := range fx.Models[name].Gradients {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// TestTrainStepParityWithPyTorch: one training step of both tutorial models (small, with every
// layer kind of the real ones) on every backend (backendtest.All), against an independent PyTorch implementation
// in float64 (testdata/gen_train_step_parity.py): loss, logits and the gradient of every trainable
// variable. This is the test that failed on ONNX Runtime before internal/layers' portable
// formulations (the stem kernel's gradient was 2e-3 off through the max pool's gradient).
func TestTrainStepParityWithPyTorch(t *testing.T) {
	fx := loadTrainStepFixture(t)
	c := fx.Config
	for _, be := range backendtest.All(t) {
		for _, name := range []string{"resizer", "baseline"} {
			want := fx.Models[name]
			paths := fx.gradientPaths(name)
			loss, logits, grads := trainStepOutputs(t, be, fx.store(t, dtypes.Float32), fx.Config.model(name == "resizer"), c.LabelSmoothing, paths, dtypes.Float32,
				fx.pixelTensor(), fx.oneHot(dtypes.Float32))
			// Tolerances: float32 against float64, through ~20 layers with batch norm over 4 images. The
			// worst relative gradient error (per variable) measured on every backend is 8.7e-5, on
			// /densenet/conv1_bn/gamma; the float64 test below shows the formulas are exact.
			//
			// With TF32 (XLA on a GPU, the default there) every convolution and matmul rounds its inputs to
			// 10 mantissa bits, 8,192 times float32's unit roundoff: the same 8.7e-5 extrapolates to ~0.7,
			// and an H200 measured loss 1.6e-4 off, logits 7.6e-4, gradients up to 0.19 (a batch norm
			// beta, a sum that cancels). Such a run checks only that nothing is grossly wrong (a missing
			// or sign-flipped term is off by 1 or more); the TF32-off run checks the formulas.
			tolLoss, tolLogits, tolGrad := 1e-5, 1e-4, 2e-3
			if backendtest.TF32(be.Backend) {
				tolLoss, tolLogits, tolGrad = 1e-3, 5e-3, 0.5
			}
			if d := math.Abs(loss - want.Loss); d > tolLoss {
				t.Errorf("%s on %s: loss %.7f, PyTorch %.7f", name, be.Name, loss, want.Loss)
			}
			if e := backendtest.RelDiff(logits, want.Logits); e > tolLogits {
				t.Errorf("%s on %s: logits relative error %.2g", name, be.Name, e)
			}
			worst, worstPath := 0.0, ""
			for i, p := range paths {
				e := backendtest.RelDiff(grads[i], want.Gradients[p])
				if e > worst || math.IsNaN(e) {
					worst, worstPath = e, p
				}
				if e > tolGrad || math.IsNaN(e) {
					t.Errorf("%s on %s: gradient of %s: relative error %.2g", name, be.Name, p, e)
				}
			}
			t.Logf("%-8s on %-11s: loss %.7f (PyTorch %.7f); %d gradients, worst relative error %.2g (%s)",
				name, be.Name, loss, want.Loss, len(paths), worst, worstPath)
		}
	}
}

// TestTrainStepParityFloat64 is the same step in float64 on the go backend (native and portable
// formulations), where rounding cannot hide a wrong formula: every gradient must match PyTorch's to
// 1e-7. (models.Build computes in float32, so the model is assembled from its parts here; ONNX
// Runtime runs float64 convolutions in float32, so it is covered by the float32 test only.)
func TestTrainStepParityFloat64(t *testing.T) {
	fx := loadTrainStepFixture(t)
	c := fx.Config
	for _, be := range backendtest.All(t) {
		if be.Name == "onnx" {
			continue
		}
		for _, name := range []string{"resizer", "baseline"} {
			want := fx.Models[name]
			paths := fx.gradientPaths(name)
			loss, _, grads := trainStepOutputs(t, be, fx.store(t, dtypes.Float64), fx.Config.model(name == "resizer"), c.LabelSmoothing, paths,
				dtypes.Float64, fx.pixelTensor(), fx.oneHot(dtypes.Float32))
			if math.Abs(loss-want.Loss) > 1e-9 {
				t.Errorf("%s on %s: loss %.12f, PyTorch %.12f", name, be.Name, loss, want.Loss)
			}
			worst := 0.0
			for i, p := range paths {
				e := backendtest.RelDiff(grads[i], want.Gradients[p])
				worst = max(worst, e)
				if e > 1e-7 || math.IsNaN(e) {
					t.Errorf("%s on %s: gradient of %s: relative error %.2g", name, be.Name, p, e)
				}
			}
			t.Logf("%-8s on %-11s float64: %d gradients, worst relative error %.2g", name, be.Name, len(paths), worst)
		}
	}
}
