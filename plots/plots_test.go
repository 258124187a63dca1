package plots

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

func solid(w, h int, c color.RGBA) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{c.R, uint8(x * 255 / w), c.B, 255})
		}
	}
	return img
}

// decodeNonBlank decodes a PNG and checks it has the given size and real content.
func decodeNonBlank(t *testing.T, data []byte, w, h int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	colors := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			colors[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	if len(colors) < 20 {
		t.Errorf("PNG looks blank: %d distinct colours", len(colors))
	}
	return img
}

func TestMapping(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions([]float32{-0.5, 0.5, 1.5, 0, 0.25, 1}, 1, 2, 3)
	img, clipped, err := Mapping{}.ToImage(x)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(clipped-2.0/6) > 1e-9 {
		t.Errorf("clipped fraction %v, want 2/6", clipped)
	}
	if c := img.At(0, 0).(color.RGBA); c.R != 0 || c.G != 128 || c.B != 255 {
		t.Errorf("pixel %v", c)
	}
	_, clipped, _ = Mapping{Divide: 10}.ToImage(x)
	if math.Abs(clipped-1.0/6) > 1e-9 { // only -0.05 is out of range after dividing by 10
		t.Errorf("divide-by-10 clipped %v, want 1/6", clipped)
	}
	img, clipped, _ = Mapping{MinMax: true}.ToImage(x)
	if clipped != 0 || img.At(0, 0).(color.RGBA).R != 0 || img.At(0, 0).(color.RGBA).B != 255 {
		t.Errorf("min-max: clipped %v, pixel %v", clipped, img.At(0, 0))
	}
	if _, _, err := (Mapping{}).ToImage(tensors.FromFlatDataAndDimensions([]float32{1, 2}, 1, 2)); err == nil {
		t.Error("wrong shape accepted")
	}
}

func TestImageGrid(t *testing.T) {
	var pairs []Pair
	for i := range 6 {
		pairs = append(pairs, Pair{Input: solid(30, 30, color.RGBA{uint8(40 * i), 0, 100, 255}),
			Resized: solid(15, 15, color.RGBA{0, 0, uint8(40 * i), 255}), Clipped: 0.031 * float64(i%2)})
	}
	fig, err := ImageGrid(pairs, "resizer output clipped to [0,1]")
	if err != nil {
		t.Fatal(err)
	}
	data, err := fig.PNG()
	if err != nil {
		t.Fatal(err)
	}
	decodeNonBlank(t, data, 960, 792) // 720x594 points at 96 dpi
	svg, err := fig.SVG()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Input Image", "Resized Image", "3.1% clipped", "clipped to [0,1]"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if _, err := ImageGrid(nil, ""); err == nil {
		t.Error("empty grid accepted")
	}
	path := filepath.Join(t.TempDir(), "grid.png")
	if err := fig.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := fig.Save(filepath.Join(t.TempDir(), "grid.gif")); err == nil {
		t.Error("saving as .gif accepted")
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Errorf("saved grid: %v %v", st, err)
	}
}

func history(shift float64) *training.History {
	h := &training.History{}
	for e := 1; e <= 5; e++ {
		f := float64(e)
		h.Epochs = append(h.Epochs, training.EpochStats{Epoch: e, Loss: 0.7 - 0.05*f + shift, ValLoss: 0.72 - 0.04*f + shift,
			Accuracy: 0.5 + 0.04*f - shift, ValAccuracy: 0.5 + 0.03*f - shift})
	}
	return h
}

func TestCurvesAndBars(t *testing.T) {
	fig, err := Curves([]Series{{Name: "learnable resizer", History: history(0)}, {Name: "bilinear", History: history(0.02), ValMajority: 0.52}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := fig.PNG()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "curves.png"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	decodeNonBlank(t, data, 1200, int(fig.Height.Dots(96)+0.5))
	svg, _ := fig.SVG()
	for _, want := range []string{"epoch", "Accuracy", "learnable resizer, validation", "bilinear, training", "most frequent class (52.0%)"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("curves SVG lacks %q", want)
		}
	}
	if _, err := Curves([]Series{{Name: "empty", History: &training.History{}}}); err == nil {
		t.Error("empty history accepted")
	}
	cmp := &training.Comparison{Config: training.Default(), Seeds: []int64{1, 2, 3}, Rows: []training.ComparisonRow{
		{Model: "Learnable resizer + densenet121", Params: 7051717, Mean: 0.6767, Std: 0.02},
		{Model: "bilinear resize + densenet121", Params: 7039554, Mean: 0.6019, Std: 0.03}}}
	bars, err := ComparisonBars(cmp)
	if err != nil {
		t.Fatal(err)
	}
	data, err = bars.PNG()
	if err != nil {
		t.Fatal(err)
	}
	decodeNonBlank(t, data, 747, 523) // 380 pt + one more line for the wrapped names
	svg, _ = bars.SVG()
	if !strings.Contains(string(svg), "7.051717M params") || !strings.Contains(string(svg), "3 seeds") {
		t.Error("bar chart lacks its labels")
	}
}

func TestResizerPairs(t *testing.T) {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resizer.NewModel(b, resizer.Config{TargetHeight: 8, TargetWidth: 6, Filters: 2, ResBlocks: 1, Interpolation: resizer.Bilinear}, 3)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := ResizerPairs(m, []image.Image{solid(20, 16, color.RGBA{200, 0, 0, 255}), solid(12, 12, color.RGBA{0, 0, 0, 255})}, Mapping{Divide: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 || pairs[1].Resized.Bounds().Dx() != 6 || pairs[1].Resized.Bounds().Dy() != 8 || pairs[0].Input.Bounds().Dx() != 20 {
		t.Errorf("pairs %+v", pairs)
	}
}
