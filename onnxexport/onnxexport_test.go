package onnxexport

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/tensors"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/learnresize/learnresize/internal/ortlib"
	"github.com/learnresize/learnresize/resizer"
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
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{ResizerInput}, []string{ResizerOutput}, nil)
	if err != nil {
		t.Fatalf("ONNX Runtime refuses the exported resizer: %v", err)
	}
	defer sess.Destroy()
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
		x, err := ort.NewTensor(ort.NewShape(int64(len(c.names)), int64(c.h), int64(c.w), 3), tensors.MustCopyFlatData[float32](in))
		if err != nil {
			t.Fatal(err)
		}
		outs := []ort.Value{nil}
		if err := sess.Run([]ort.Value{x}, outs); err != nil {
			t.Fatalf("%dx%d: %v", c.h, c.w, err)
		}
		got := outs[0].(*ort.Tensor[float32])
		wantShape := ort.NewShape(int64(len(c.names)), int64(cfg.TargetHeight), int64(cfg.TargetWidth), 3)
		if !slicesEqual(got.GetShape(), wantShape) {
			t.Fatalf("%dx%d: output shape %v, want %v", c.h, c.w, got.GetShape(), wantShape)
		}
		wv, gv := tensors.MustCopyFlatData[float32](want), got.GetData()
		worst, scale := 0.0, 0.0
		for i := range wv {
			worst = math.Max(worst, math.Abs(float64(gv[i]-wv[i])))
			scale = math.Max(scale, math.Abs(float64(wv[i])))
		}
		// Float32 sums of a few hundred products per convolution, six convolutions deep: a few 1e-6
		// of the output's range; a wrong tap, padding or layout is O(1).
		if worst > 1e-5*scale || math.IsNaN(worst) {
			t.Errorf("%dx%d: ONNX Runtime's output is up to %.3g off GoMLX's (range %.3g)", c.h, c.w, worst, scale)
		}
		t.Logf("%d photos at %dx%d: ONNX Runtime within %.2g of GoMLX (output range %.3g)", len(c.names), c.h, c.w, worst, scale)
		_ = x.Destroy()
		_ = got.Destroy()
	}
}

func slicesEqual(a, b ort.Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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
