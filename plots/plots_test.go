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
	img, clipped, err := Clip.ToImage(x)
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
	if _, err := Auto.Resolve(x, tensors.FromFlatDataAndDimensions([]float32{1, 2}, 1, 2)); err == nil {
		t.Error("Resolve accepted a wrong shape")
	}
}

// ramp is a 1 x n/3 x 3 image tensor of n values spread evenly over [lo, hi], plus extra values.
func ramp(n int, lo, hi float32, extra ...float32) *tensors.Tensor {
	v := make([]float32, 0, n+len(extra))
	for i := range n {
		v = append(v, lo+(hi-lo)*float32(i)/float32(n-1))
	}
	v = append(v, extra...)
	return tensors.FromFlatDataAndDimensions(v, 1, len(v)/3, 3)
}

func TestAutoMapping(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name   string
		values []*tensors.Tensor
		lo, hi float64 // the resolved range, within 0.1
		text   string  // its String's start
	}{
		{"inside [0, 1]", []*tensors.Tensor{ramp(3000, 0, 1)}, 0, 1, "clipped to [0,1]"},
		{"low contrast is not stretched", []*tensors.Tensor{ramp(3000, 0.3, 0.6)}, 0, 1, "clipped to [0,1]"},
		{"just beyond [0, 1]", []*tensors.Tensor{ramp(3000, -0.015, 1.015)}, 0, 1, "clipped to [0,1]"},
		{"short run", []*tensors.Tensor{ramp(3000, -0.12, 1.31)}, -0.12, 1.31, "mapped [-0.1"},
		{"long run", []*tensors.Tensor{ramp(3000, -5, 12)}, -5, 12, "mapped [-4.9"},
		{"outliers and non-finite values ignored", []*tensors.Tensor{ramp(3000, -5, 12, 1000, -1000, nan, inf, -inf, nan)}, -5, 12, "mapped [-4.9"},
		{"one range for all outputs", []*tensors.Tensor{ramp(3000, 0, 1), ramp(3000, 0.5, 3)}, 0, 2.9, "mapped [0, 2.9"},
		{"nothing finite", []*tensors.Tensor{ramp(3, nan, nan)}, 0, 1, "clipped to [0,1]"},
	} {
		m, err := Auto.Resolve(c.values...)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(m.Lo-c.lo) > 0.1 || math.Abs(m.Hi-c.hi) > 0.1 || !strings.HasPrefix(m.String(), c.text) {
			t.Errorf("%s: resolved to %+v, %q; want about [%g, %g], %q...", c.name, m, m, c.lo, c.hi, c.text)
		}
	}
	for m, want := range map[Mapping]string{{Lo: -0.12, Hi: 1.31}: "mapped [-0.12, 1.31] → [0, 1]",
		{Lo: -0.0389, Hi: 1.3612}: "mapped [-0.04, 1.36] → [0, 1]", {Lo: -5, Hi: 12}: "mapped [-5, 12] → [0, 1]",
		{Lo: 0.001, Hi: 0.003}: "mapped [0.001, 0.003] → [0, 1]", {Lo: -0.001, Hi: 2}: "mapped [0, 2] → [0, 1]"} {
		if got := m.String(); got != want {
			t.Errorf("%+v: caption %q, want %q", m, got, want)
		}
	}
	if got := Auto.String(); !strings.Contains(got, "percentiles") {
		t.Errorf("unresolved Auto says %q", got)
	}
	for _, m := range []Mapping{Clip, {Divide: 10}, {Lo: -1, Hi: 3}} {
		if r, err := m.Resolve(ramp(30, -50, 50)); err != nil || r != m {
			t.Errorf("Resolve changed the fixed mapping %+v into %+v (%v)", m, r, err)
		}
	}
	if r, _ := (Mapping{MinMax: true}).Resolve(ramp(30, -2, 1), ramp(30, 0, 5)); r.Lo != -2 || r.Hi != 5 {
		t.Errorf("MinMax over two outputs resolved to %+v, want [-2, 5]", r)
	}
	// A resolved mapping sends Lo to black and Hi to white, values beyond them clipped.
	x := tensors.FromFlatDataAndDimensions([]float32{-5, 3.5, 12, 20, -6, 12}, 1, 2, 3)
	img, clipped, err := Mapping{Lo: -5, Hi: 12}.ToImage(x)
	if err != nil {
		t.Fatal(err)
	}
	if c := img.At(0, 0).(color.RGBA); c.R != 0 || c.G != 128 || c.B != 255 || math.Abs(clipped-2.0/6) > 1e-9 {
		t.Errorf("pixel %v, clipped %v", c, clipped)
	}
	// ToImage alone resolves Auto against its own tensor.
	if _, clipped, _ := Auto.ToImage(x); clipped > 0.34 {
		t.Errorf("Auto clipped %v of a 6-value image", clipped)
	}
}

func TestParseMapping(t *testing.T) {
	for s, want := range map[string]Mapping{"auto": Auto, "clip": Clip, "minmax": {MinMax: true}, "/10": {Divide: 10}, "/2.5": {Divide: 2.5}} {
		if got, err := ParseMapping(s); err != nil || got != want {
			t.Errorf("ParseMapping(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "/0", "/-3", "/x", "10", "divide"} {
		if _, err := ParseMapping(s); err == nil {
			t.Errorf("ParseMapping(%q) accepted", s)
		}
	}
}

func TestImageGrid(t *testing.T) {
	var pairs []Pair
	for i := range 6 {
		pairs = append(pairs, Pair{Input: solid(30, 30, color.RGBA{uint8(40 * i), 0, 100, 255}),
			Resized: solid(15, 15, color.RGBA{0, 0, uint8(40 * i), 255}), Clipped: 0.031 * float64(i%2)})
	}
	pairs[2].Clipped = 0.0001
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
	for _, want := range []string{"Input Image", "Resized Image", "3.1% clipped", "&lt;0.1% clipped" /* SVG escapes < */, "clipped to [0,1]"} {
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
	inputs := []image.Image{solid(20, 16, color.RGBA{200, 0, 0, 255}), solid(12, 12, color.RGBA{0, 0, 0, 255})}
	pairs, mp, err := ResizerPairs(m, inputs, Mapping{Divide: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 || pairs[1].Resized.Bounds().Dx() != 6 || pairs[1].Resized.Bounds().Dy() != 8 || pairs[0].Input.Bounds().Dx() != 20 {
		t.Errorf("pairs %+v", pairs)
	}
	if mp != (Mapping{Divide: 10}) {
		t.Errorf("the tutorial's mapping came back as %+v", mp)
	}
	// Auto: one mapping, chosen from both outputs together, is applied to both pairs.
	pairs, mp, err = ResizerPairs(m, inputs, Auto)
	if err != nil {
		t.Fatal(err)
	}
	var raws []*tensors.Tensor
	for _, in := range inputs {
		_, raw, err := m.ResizeImage(in)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	want, err := Auto.Resolve(raws...)
	if err != nil {
		t.Fatal(err)
	}
	if mp != want || !(mp.Hi > mp.Lo) {
		t.Errorf("ResizerPairs resolved Auto to %+v, want %+v over both outputs", mp, want)
	}
	for i, raw := range raws {
		img, clipped, _ := want.ToImage(raw)
		if !bytes.Equal(img.(*image.RGBA).Pix, pairs[i].Resized.(*image.RGBA).Pix) || clipped != pairs[i].Clipped {
			t.Errorf("pair %d is not its output under the figure's mapping %v", i, want)
		}
	}
}

func TestModelColor(t *testing.T) {
	resizer, baseline := "Learnable resizer + densenet121", "bilinear resize + densenet121"
	for _, name := range []string{resizer + " (seed 42)", resizer + " (3 seeds)", "learnable resizer"} {
		if ModelColor(name) != ModelColor(resizer) {
			t.Errorf("%q is not in the colour of %q", name, resizer)
		}
	}
	warm := []string{"densenet121 fine-tuned at 300x300", "same weights at 150x150 (bilinear resize, no training)",
		"bilinear resize 300x300 -> 150x150 + densenet121, warm-started", "Learnable resizer 300x300 -> 150x150 + densenet121, warm-started"}
	seen := map[color.Color]string{}
	for _, name := range append([]string{resizer, baseline}, warm...) {
		c := ModelColor(name)
		if other, ok := seen[c]; ok && ModelColor(other) != ModelColor(name) {
			t.Errorf("map inconsistency for %q", name)
		}
		seen[c] = name
	}
	if len(seen) != 4 || ModelColor(resizer) == ModelColor(baseline) || ModelColor(warm[0]) == ModelColor(warm[1]) {
		t.Errorf("the six models of the two experiments get %d colours (want 4: the resizers share one, the naive resizes another)", len(seen))
	}
	if ModelColor("some other model") != ModelColor("some other model (seed 7)") {
		t.Error("a model's colour depends on its seed")
	}
}

// countColor counts the pixels of img that are exactly c.
func countColor(img image.Image, c color.Color) int {
	want := color.RGBAModel.Convert(c).(color.RGBA)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) == want {
				n++
			}
		}
	}
	return n
}

// TestFiguresShareModelColors: the curves and the bars draw each model in its ModelColor, and the bar
// chart has no vertical grid lines over its bars.
func TestFiguresShareModelColors(t *testing.T) {
	resizer, baseline := "Learnable resizer + densenet121", "bilinear resize + densenet121"
	render := func(f *Figure, err error) image.Image {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		data, err := f.PNG()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	curves := render(Curves([]Series{{Name: resizer + " (seed 42)", History: history(0)}, {Name: baseline + " (seed 42)", History: history(0.02)}}))
	cmp := &training.Comparison{Config: training.Default(), Seeds: []int64{42}, Rows: []training.ComparisonRow{
		{Model: resizer, Params: 7051717, Mean: 0.6767}, {Model: baseline, Params: 7039554, Mean: 0.6019}}}
	bars := render(ComparisonBars(cmp))
	for _, name := range []string{resizer, baseline} {
		c := ModelColor(name)
		if n := countColor(curves, c); n < 50 {
			t.Errorf("curves: %d pixels in %s's colour", n, name)
		}
		if n := countColor(bars, c); n < 2000 {
			t.Errorf("bars: %d pixels in %s's colour", n, name)
		}
	}
	// Above the resizer's bar, along its centre, only the horizontal grid line at 100% may be drawn
	// (below the title, above the value's label).
	blue := color.RGBAModel.Convert(ModelColor(resizer)).(color.RGBA)
	b := bars.Bounds()
	top, left, right := b.Max.Y, b.Max.X, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(bars.At(x, y)).(color.RGBA) == blue {
				top, left, right = min(top, y), min(left, x), max(right, x)
			}
		}
	}
	if top >= b.Max.Y {
		t.Fatal("no bar in the resizer's colour")
	}
	drawn := 0
	for y := b.Min.Y + 40; y < top-40; y++ {
		if r, g, bl, _ := bars.At((left+right)/2, y).RGBA(); r>>8 < 250 || g>>8 < 250 || bl>>8 < 250 {
			drawn++
		}
	}
	if drawn > 4 {
		t.Errorf("%d pixels drawn above the resizer's bar, along its centre: a vertical grid line?", drawn)
	}
}
