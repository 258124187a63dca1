package models

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/learnresize/learnresize/backend"
)

func testBackend(t testing.TB) compute.Backend {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTitlesReadAsText: a custom DenseNet's title shows its blocks as words, not as a Go slice, while
// the folder name stays "resizer"/"baseline".
func TestTitlesReadAsText(t *testing.T) {
	c := Tutorial()
	c.Blocks, c.Resizer = []int{2, 2}, true
	if got, want := c.Title(), "Learnable resizer + DenseNet (blocks 2, 2)"; got != want || c.Name() != "resizer" {
		t.Errorf("title %q (name %q), want %q (resizer)", got, c.Name(), want)
	}
	c.Resizer, c.Blocks = false, []int{6, 12, 24, 16}
	if got, want := c.Title(), "bilinear resize + DenseNet (blocks 6, 12, 24, 16)"; got != want || c.Name() != "baseline" {
		t.Errorf("title %q (name %q), want %q (baseline)", got, c.Name(), want)
	}
	c.Blocks = nil
	if got := c.Title(); got != "bilinear resize + densenet121" {
		t.Errorf("preset title %q", got)
	}
}

// TestTutorialParameterCounts: the tutorial's table, 7,051,717 with the resizer and 7,039,554 without.
func TestTutorialParameterCounts(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		total int
		row   string
	}{
		{Tutorial(), 7051717, "learnable_resizer (Functional)"},
		{Tutorial().Baseline(), 7039554, "resizing (Resizing)"},
	} {
		s, err := Summary(c.cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.Total != c.total {
			t.Errorf("%s: %d parameters, want %d", c.cfg.Name(), s.Total, c.total)
		}
		text := s.String()
		if !strings.Contains(text, c.row) || !strings.Contains(text, "densenet121 (Functional)") {
			t.Errorf("%s summary:\n%s", c.cfg.Name(), text)
		}
		expanded, err := Summary(c.cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		if expanded.Total != c.total || len(expanded.Rows) < 400 {
			t.Errorf("%s expanded summary: %d params, %d rows", c.cfg.Name(), expanded.Total, len(expanded.Rows))
		}
	}
}

// TestResNetBackbone: the paper's second backbone behind the resizer and the plain resize. Keras'
// ResNet50 with 2 classes has 23,591,810 parameters, the resizer adds its 12,163; torchvision's layout
// has no convolution biases, so fewer (the resnet package's tests check both counts exactly).
// Torchvision weights need that layout.
func TestResNetBackbone(t *testing.T) {
	cfg := Tutorial()
	cfg.Preset = "resnet50"
	for _, c := range []struct {
		cfg   Config
		total int
	}{
		{cfg, 23591810 + 12163},
		{cfg.Baseline(), 23591810},
	} {
		s, err := Summary(c.cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.Total != c.total || !strings.Contains(s.String(), "resnet50 (Functional)") || c.cfg.Title() != map[bool]string{true: "Learnable resizer + resnet50", false: "bilinear resize + resnet50"}[c.cfg.Resizer] {
			t.Errorf("%s: %d parameters, want %d:\n%s", c.cfg.Title(), s.Total, c.total, s)
		}
	}
	tv := cfg
	tv.TorchvisionLayout = true
	s, err := Summary(tv, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total >= 23591810+12163 {
		t.Errorf("torchvision layout: %d parameters, want fewer than Keras' (no convolution biases)", s.Total)
	}
	if err := LoadPretrainedBackbone(model.NewStore(), cfg, "../resnet/testdata/torchvision_resnet_small.safetensors"); err == nil || !strings.Contains(err.Error(), "torchvision layout") {
		t.Errorf("torchvision weights into Keras' layout: %v", err)
	}
}

func small() Config {
	c := Tutorial()
	c.InputHeight, c.InputWidth, c.TargetHeight, c.TargetWidth = 48, 48, 32, 32
	c.Filters = 4
	c.Blocks, c.Growth = []int{2, 2}, 4
	return c
}

// TestSameInitialBackbone: for the same seed both models start from the same DenseNet-121 weights.
func TestSameInitialBackbone(t *testing.T) {
	b := testBackend(t)
	cfg := Tutorial()
	cfg.InputHeight, cfg.InputWidth, cfg.TargetHeight, cfg.TargetWidth = 40, 40, 32, 32
	init := func(c Config, seed int64) *model.Store {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, seed)
		if _, err := model.CallOnce(b, store, ModelFn(c), tensors.FromShape(shapes.Make(dtypes.Uint8, 1, 40, 40, 3))); err != nil {
			t.Fatal(err)
		}
		return store
	}
	with, without, other := init(cfg, 7), init(cfg.Baseline(), 7), init(cfg.Baseline(), 8)
	compared, differs := 0, false
	for v := range with.IterVariables() {
		if !strings.HasPrefix(v.Path(), "/densenet121/") {
			continue
		}
		a := tensors.MustCopyFlatData[float32](v.MustValue())
		w2 := without.GetVariable(v.Path())
		if w2 == nil {
			t.Fatalf("%s missing in the baseline", v.Path())
		}
		bb := tensors.MustCopyFlatData[float32](w2.MustValue())
		o := tensors.MustCopyFlatData[float32](other.GetVariable(v.Path()).MustValue())
		for i := range a {
			if a[i] != bb[i] {
				t.Fatalf("%s[%d]: %v with the resizer, %v without", v.Path(), i, a[i], bb[i])
			}
			differs = differs || a[i] != o[i]
		}
		compared++
	}
	if compared < 600 {
		t.Errorf("compared only %d backbone variables", compared)
	}
	if !differs {
		t.Error("seeds 7 and 8 gave identical backbones")
	}
}

// TestTrainingStepLearns trains each model a few SGD steps with GoMLX's trainer on a learnable
// synthetic task (class 1 images are brighter) at tiny shapes: the loss must be finite and drop.
func TestTrainingStepLearns(t *testing.T) {
	b := testBackend(t)
	const batch = 8
	r := rand.New(rand.NewPCG(3, 4))
	makeBatch := func() train.Batch {
		px := make([]uint8, batch*48*48*3)
		labels := make([]float32, batch*2)
		for i := range batch {
			cls := i % 2
			labels[i*2+cls] = 1
			for j := range 48 * 48 * 3 {
				v := r.IntN(128)
				if cls == 1 {
					v += 100
				}
				px[i*48*48*3+j] = uint8(v)
			}
		}
		return train.Batch{Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(px, batch, 48, 48, 3)},
			Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(labels, batch, 2)}}
	}
	for _, cfg := range []Config{small(), small().Baseline()} {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(1))
		trainer := train.NewTrainer(b, store, ModelFn(cfg), loss.CategoricalCrossEntropyLogits,
			optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.05).Done(), nil, nil)
		var losses []float64
		for range 12 {
			m, err := trainer.TrainStep(makeBatch())
			if err != nil {
				t.Fatalf("%s: %v", cfg.Name(), err)
			}
			l := float64(tensors.MustCopyFlatData[float32](m[0])[0])
			if math.IsNaN(l) || math.IsInf(l, 0) {
				t.Fatalf("%s: loss %v", cfg.Name(), l)
			}
			losses = append(losses, l)
		}
		first := (losses[0] + losses[1] + losses[2]) / 3
		last := (losses[9] + losses[10] + losses[11]) / 3
		t.Logf("%s losses: %.3f", cfg.Name(), losses)
		if !(last < 0.8*first) {
			t.Errorf("%s: mean loss went from %.4f (first 3 steps) to %.4f (last 3); want a clear drop", cfg.Name(), first, last)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.TargetHeight = 20 },
		func(c *Config) { c.Classes = 1 },
		func(c *Config) { c.Preset = "resnet18" },
		func(c *Config) { c.Preset = "resnet50"; c.Growth = 8 },
		func(c *Config) { c.Preset = "resnet50"; c.Recompute = true },
		func(c *Config) { c.TorchvisionLayout = true }, // a DenseNet has one layout
		func(c *Config) { c.Filters = 0 },
		func(c *Config) { c.InputWidth = 0 },
	}
	for i, f := range bad {
		c := Tutorial()
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, c)
		}
	}
	if _, err := Summary(Config{}, false); err == nil {
		t.Error("Summary of an empty config gave no error")
	}
}

func ExampleSummary() {
	s, err := Summary(Tutorial(), false)
	if err != nil {
		panic(err)
	}
	fmt.Print(s)
	// Output:
	// Model: "Learnable resizer + densenet121"
	// _________________________________________________________________
	//  Layer (type)                    Output Shape              Param #
	// =================================================================
	//  rescaling (Rescaling)           (None, 300, 300, 3)             0
	//  learnable_resizer (Functional)  (None, 150, 150, 3)        12,163
	//  densenet121 (Functional)        (None, 2)               7,039,554
	// =================================================================
	// Total params: 7,051,717 (26.90 MB)
	// Trainable params: 6,967,941 (26.58 MB)
	// Non-trainable params: 83,776 (327.25 KB)
}

// TestBFloat16MixedPrecision: with BFloat16 the weights stay float32, logits are float32, and a few
// training steps still learn.
func TestBFloat16MixedPrecision(t *testing.T) {
	b := testBackend(t)
	if b.Name() == "onnxruntime" {
		t.Skip("ONNX Runtime has no bfloat16 convolutions (compute-onnx refuses them), so the command refuses -bf16 there")
	}
	cfg := small()
	cfg.BFloat16 = true
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(1))
	trainer := train.NewTrainer(b, store, ModelFn(cfg), loss.CategoricalCrossEntropyLogits,
		optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.05).Done(), nil, nil)
	r := rand.New(rand.NewPCG(8, 9))
	var losses []float64
	for range 10 {
		px := make([]uint8, 8*48*48*3)
		labels := make([]float32, 8*2)
		for i := range 8 {
			labels[i*2+i%2] = 1
			for j := range 48 * 48 * 3 {
				px[i*48*48*3+j] = uint8(r.IntN(128) + 100*(i%2))
			}
		}
		m, err := trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(px, 8, 48, 48, 3)},
			Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(labels, 8, 2)}})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, float64(tensors.MustCopyFlatData[float32](m[0])[0]))
	}
	if !(losses[9]+losses[8] < 0.8*(losses[0]+losses[1])) {
		t.Errorf("bfloat16 losses did not fall: %.3f", losses)
	}
	for v := range store.IterVariables() {
		if strings.HasPrefix(v.Path(), "/densenet/") || strings.HasPrefix(v.Path(), "/learnable_resizer/") {
			if v.DType() != dtypes.Float32 {
				t.Fatalf("%s is %s, want float32 master weights", v.Path(), v.DType())
			}
		}
	}
	y, err := model.CallOnce(b, store, ModelFn(cfg), tensors.FromShape(shapes.Make(dtypes.Uint8, 2, 48, 48, 3)))
	if err != nil || y.DType() != dtypes.Float32 {
		t.Errorf("inference logits: %v %v", y, err)
	}
}

func TestCheckMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("available memory is read on Linux")
	}
	c := Tutorial()
	if err := CheckMemory(c, 64); err != nil {
		t.Errorf("the tutorial's batch: %v", err)
	}
	c.InputHeight, c.InputWidth = 100000, 100000
	if err := CheckMemory(c, 64); err == nil || !strings.Contains(err.Error(), "-inp") || strings.Contains(err.Error(), "\n") {
		t.Errorf("64 images of 100000x100000: %v, want a one-line error", err)
	}
}

// TestNormalizeImageNet: (x - mean) / std per channel, with torchvision's ImageNet values.
func TestNormalizeImageNet(t *testing.T) {
	b := testBackend(t)
	x := tensors.FromFlatDataAndDimensions([]float32{0, 0.5, 1, 0.485, 0.456, 0.406}, 1, 1, 2, 3)
	y, err := graph.ExecOnce(b, func(x *graph.Node) *graph.Node { return normalizeImageNet(x) }, x)
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](y)
	want := []float64{-0.485 / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225, 0, 0, 0}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Fatalf("normalised %v, want %v", got, want)
		}
	}
	c := Tutorial()
	c.Normalize = "cifar"
	if err := c.Validate(); err == nil {
		t.Error("unknown normalisation accepted")
	}
}

// TestConfigReadsTheOldRecomputeName: configurations saved before Recompute was renamed (JSON field
// "Checkpoint") still load, with their value; new ones round-trip under the new name.
func TestConfigReadsTheOldRecomputeName(t *testing.T) {
	var old Config
	if err := json.Unmarshal([]byte(`{"InputHeight": 300, "TargetHeight": 150, "Preset": "densenet121", "Checkpoint": true}`), &old); err != nil {
		t.Fatal(err)
	}
	if !old.Recompute || old.InputHeight != 300 || old.TargetHeight != 150 || old.Preset != "densenet121" {
		t.Errorf("old configuration read as %+v", old)
	}
	c := Tutorial()
	c.Recompute = true
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil || !back.Recompute || back.TargetWidth != c.TargetWidth || !strings.Contains(string(b), `"Recompute":true`) {
		t.Errorf("round trip %s: %+v (%v)", b, back, err)
	}
}
