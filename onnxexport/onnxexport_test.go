package onnxexport

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/learnresize/learnresize/internal/ortlib"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// startORT loads ONNX Runtime's CPU library (scripts/install_onnxruntime.sh) for this test binary,
// or skips the test without it (fails where CI requires it).
func startORT(t *testing.T) {
	t.Helper()
	if ort.IsInitialized() {
		return
	}
	lib, _ := ortlib.Find()
	if lib == "" {
		if os.Getenv("LEARNRESIZE_REQUIRE_ONNX") != "" {
			t.Fatal("LEARNRESIZE_REQUIRE_ONNX is set but no ONNX Runtime library was found (scripts/install_onnxruntime.sh)")
		}
		t.Skip("no ONNX Runtime library (scripts/install_onnxruntime.sh installs it): the exported files cannot be run")
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		t.Fatalf("ONNX Runtime %s: %v", lib, err)
	}
}

// photos decodes committed real photos (training/testdata/photos: PetImages, re-encoded) as
// [n, h, w, 3] float32 pixels / 255, each cropped to h x w from its top-left corner.
func photos(t *testing.T, names []string, h, w int) *tensors.Tensor {
	t.Helper()
	px := make([]float32, 0, len(names)*h*w*3)
	for _, n := range names {
		f, err := os.Open(filepath.Join("..", "training", "testdata", "photos", n))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		if b.Dx() < w || b.Dy() < h {
			t.Fatalf("%s is %v, smaller than %dx%d", n, b, h, w)
		}
		for y := range h {
			for x := range w {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				px = append(px, float32(r>>8)/255, float32(g>>8)/255, float32(bl>>8)/255)
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(px, len(names), h, w, 3)
}

// runONNX runs the ONNX model data in ONNX Runtime on one input (its name, dimensions and values)
// and returns the values and shapes of the outputs named.
func runONNX[T ort.TensorData](t *testing.T, data []byte, input string, dims []int64, in []T, outputs ...string) ([][]float32, []ort.Shape) {
	t.Helper()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{input}, outputs, nil)
	if err != nil {
		t.Fatalf("ONNX Runtime refuses the exported model: %v", err)
	}
	defer sess.Destroy()
	x, err := ort.NewTensor(ort.NewShape(dims...), in)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	outs := make([]ort.Value, len(outputs))
	if err := sess.Run([]ort.Value{x}, outs); err != nil {
		t.Fatalf("ONNX Runtime, input %v: %v", dims, err)
	}
	vals, shapes := make([][]float32, len(outs)), make([]ort.Shape, len(outs))
	for i, o := range outs {
		tt := o.(*ort.Tensor[float32])
		vals[i], shapes[i] = slices.Clone(tt.GetData()), tt.GetShape()
		_ = tt.Destroy()
	}
	return vals, shapes
}

// maxDiff is the largest |got - want| and the largest |want|.
func maxDiff(got, want []float32) (worst, scale float64) {
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	return worst, scale
}

// asPixels gives back the uint8 pixels of photos' float32 values (pixels / 255).
func asPixels(in *tensors.Tensor) []uint8 {
	px := make([]uint8, 0, in.Shape().Size())
	for _, v := range tensors.MustCopyFlatData[float32](in) {
		px = append(px, uint8(math.Round(float64(v)*255)))
	}
	return px
}

// TestResizerONNXMatchesGoMLX: the resizer trained in training/testdata/run-2026-12-01 (real
// photos, one epoch), exported, runs in ONNX Runtime and gives the GoMLX model's output on real
// photos at the training size, a larger one and a non-square crop (H and W are free), within
// float32 rounding: both sum the same products in another order.
func TestResizerONNXMatchesGoMLX(t *testing.T) {
	startORT(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	m, err := resizer.Load(b, filepath.Join("..", "training", "testdata", "run-2026-12-01"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Resizer(m)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	for _, c := range []struct {
		names []string
		h, w  int
	}{
		{[]string{"cat_1063_64.png", "dog_1773_64.png", "cat_947_64.png"}, 64, 64},
		{[]string{"cat_947_300.png", "dog_2868_300.png"}, 300, 300},
		{[]string{"dog_2352_64.png"}, 48, 64},
	} {
		in := photos(t, c.names, c.h, c.w)
		want, err := m.ResizeTensor(in)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(c.names))
		got, shapes := runONNX(t, data, ResizerInput, []int64{n, int64(c.h), int64(c.w), 3}, tensors.MustCopyFlatData[float32](in), ResizerOutput)
		if wantShape := (ort.Shape{n, int64(cfg.TargetHeight), int64(cfg.TargetWidth), 3}); !slices.Equal(shapes[0], wantShape) {
			t.Fatalf("%dx%d: output shape %v, want %v", c.h, c.w, shapes[0], wantShape)
		}
		worst, scale := maxDiff(got[0], tensors.MustCopyFlatData[float32](want))
		// Float32 sums of a few hundred products per convolution, six convolutions deep: a few 1e-6
		// of the output's range; a wrong tap, padding or layout is O(1).
		if worst > 1e-5*scale || math.IsNaN(worst) {
			t.Errorf("%dx%d: ONNX Runtime's output is up to %.3g off GoMLX's (range %.3g)", c.h, c.w, worst, scale)
		}
		t.Logf("%d photos at %dx%d: ONNX Runtime within %.2g of GoMLX (output range %.3g)", len(c.names), c.h, c.w, worst, scale)
	}
}

// TestResizerRefusesOtherInterpolations: tf.image.resize's bicubic has no exact ONNX equivalent.
func TestResizerRefusesOtherInterpolations(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg := resizer.DefaultConfig()
	cfg.Interpolation = resizer.Bicubic
	m, err := resizer.NewModel(b, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resizer(m); err == nil {
		t.Error("a bicubic resizer exported")
	}
}

// TestClassifierONNXMatchesGoMLX: the whole classifier trained in
// training/testdata/run-2026-12-01 (learnable resizer + a small DenseNet), and the same run as a
// baseline (its DenseNet behind the plain resize), exported and run in ONNX Runtime on committed
// real photos, give the GoMLX model's logits and probabilities in inference mode within float32
// rounding.
func TestClassifierONNXMatchesGoMLX(t *testing.T) {
	startORT(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	store, cfg, err := training.LoadRun(filepath.Join("..", "training", "testdata", "run-2026-12-01"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"cat_1063_64.png", "dog_1773_64.png", "cat_947_64.png", "dog_5_64.png"}
	in := photos(t, names, cfg.Model.InputHeight, cfg.Model.InputWidth)
	px := asPixels(in)
	for _, mc := range []models.Config{cfg.Model, cfg.Model.Baseline()} {
		data, err := Classifier(store, mc)
		if err != nil {
			t.Fatal(err)
		}
		var want *tensors.Tensor
		want, err = model.CallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
			return models.Build(scope, Const(g, tensors.FromFlatDataAndDimensions(px, len(names), mc.InputHeight, mc.InputWidth, 3)), mc, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, _ := runONNX(t, data, ClassifierInput, []int64{int64(len(names)), int64(mc.InputHeight), int64(mc.InputWidth), 3}, px,
			Logits, Probabilities)
		logits, probs := outs[0], outs[1]
		wv := tensors.MustCopyFlatData[float32](want)
		worst, _ := maxDiff(logits, wv)
		for i := 0; i < len(names); i++ {
			l0, l1 := float64(wv[2*i]), float64(wv[2*i+1])
			p1 := 1 / (1 + math.Exp(l0-l1))
			if d := math.Abs(float64(probs[2*i+1]) - p1); d > 1e-5 {
				t.Errorf("%s, photo %d: probability %v, softmax of GoMLX's logits %v", mc.Name(), i, probs[2*i+1], p1)
			}
		}
		// Measured 2-3e-8 (float32 sums in another order); 1e-5 leaves a margin of 300. A wrong
		// layer, layout or padding moves these barely trained logits (about 0.1) by O(0.1); even a
		// wrong batch-norm epsilon (1e-3 for 1.001e-5) by 1.9e-4.
		if worst > 1e-5 || math.IsNaN(worst) {
			t.Errorf("%s: ONNX Runtime's logits up to %.3g off GoMLX's (%v vs %v)", mc.Name(), worst, logits, wv)
		}
		t.Logf("%s: logits within %.2g of GoMLX's on %d real photos (%v)", mc.Name(), worst, len(names), wv)
	}
}

// TestBackbonesONNXMatchGoMLX: the tutorial's architecture (DenseNet-121 and the learnable
// resizer) and the paper's second backbone, ResNet-50 in Keras' layout behind the plain resize and
// in torchvision's behind the resizer (initialised, not trained: no trained one is committed),
// exported and run in ONNX Runtime on real photos at 64 -> 32, give GoMLX's logits: every block,
// transition, stride, padding and the presets' layer names.
func TestBackbonesONNXMatchGoMLX(t *testing.T) {
	startORT(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"cat_1500_64.png", "dog_2868_64.png"}
	in := photos(t, names, 64, 64)
	px := asPixels(in)
	tutorial := models.Tutorial()
	tutorial.InputHeight, tutorial.InputWidth, tutorial.TargetHeight, tutorial.TargetWidth = 64, 64, 32, 32
	keras := tutorial.Baseline()
	keras.Preset = "resnet50"
	tv := tutorial
	tv.Preset, tv.TorchvisionLayout, tv.Normalize = "resnet50", true, models.NormalizeImageNet
	for _, cfg := range []models.Config{tutorial, keras, tv} {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(3))
		want, err := model.CallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
			return models.Build(scope, Const(g, tensors.FromFlatDataAndDimensions(px, len(names), 64, 64, 3)), cfg, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		data, err := Classifier(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		outs, _ := runONNX(t, data, ClassifierInput, []int64{int64(len(names)), 64, 64, 3}, px, Logits)
		got, wv := outs[0], tensors.MustCopyFlatData[float32](want)
		worst, scale := maxDiff(got, wv)
		if worst > 1e-5*math.Max(scale, 1) || math.IsNaN(worst) {
			t.Errorf("%s: ONNX Runtime's logits %v, GoMLX's %v (%.3g apart)", cfg.Title(), got, wv, worst)
		}
		t.Logf("%s (%.1f MB of ONNX): logits within %.2g of GoMLX's (%v)", cfg.Title(), float64(len(data))/1e6, worst, wv)
	}
}

// TestBilinearONNXMatchesResize: bilinear.onnx (the page's plain resize) in ONNX Runtime gives
// resizer.Resize's tf.image.resize bilinear on real photos, down (300 -> 32) and up (48x64 -> 80).
func TestBilinearONNXMatchesResize(t *testing.T) {
	startORT(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		h, w, th, tw int
	}{{"cat_947_300.png", 300, 300, 32, 32}, {"dog_5_64.png", 48, 64, 80, 80}} {
		in := photos(t, []string{c.name}, c.h, c.w)
		want, err := ExecOnce(b, func(x *Node) *Node { return resizer.Resize(x, c.th, c.tw, resizer.Bilinear) }, in)
		if err != nil {
			t.Fatal(err)
		}
		data, err := Bilinear(c.th, c.tw)
		if err != nil {
			t.Fatal(err)
		}
		outs, _ := runONNX(t, data, ResizerInput, []int64{1, int64(c.h), int64(c.w), 3}, tensors.MustCopyFlatData[float32](in), ResizerOutput)
		worst, _ := maxDiff(outs[0], tensors.MustCopyFlatData[float32](want))
		if worst > 1e-5 {
			t.Errorf("%dx%d -> %dx%d: ONNX Runtime's bilinear up to %.3g off resizer.Resize", c.h, c.w, c.th, c.tw, worst)
		}
		t.Logf("%dx%d -> %dx%d: within %.2g", c.h, c.w, c.th, c.tw, worst)
	}
}
