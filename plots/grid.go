package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// Mapping turns resizer outputs, which are not confined to [0, 1], into displayable pixels. A figure
// applies one mapping to all its resizer panels, chosen once from all the outputs it shows
// (ResizerPairs, Resolve), so that their brightness stays comparable. The kinds, by precedence:
//
//   - MinMax: the full range of the values shown, [min, max] → [0, 1]; nothing is clipped.
//   - Divide, when not 0 or 1: the tutorial's display, values divided by Divide and clipped to [0, 1]
//     (Mapping{Divide: 10}, for its long-trained resizer).
//   - Hi > Lo: the fixed linear map [Lo, Hi] → [0, 1], values outside clipped; Clip, [0, 1] → [0, 1],
//     only clips (what resizer.TensorToImage does).
//   - the zero value, Auto: chosen from the values shown, see Resolve.
type Mapping struct {
	// Divide scales values by 1/Divide before clipping (the tutorial divides by 10 after training
	// and lets matplotlib clip). 0 or 1: no scaling.
	Divide float64
	// Lo and Hi, when Hi > Lo, are the values shown as 0 and 1.
	Lo, Hi float64
	// MinMax stretches the range of the values shown to [0, 1] instead of clipping.
	MinMax bool
}

var (
	// Auto chooses the mapping from the values shown (see Resolve); it is the zero Mapping.
	Auto = Mapping{}
	// Clip shows values as they are, clipped to [0, 1].
	Clip = Mapping{Lo: 0, Hi: 1}
)

// The percentiles of the values that Auto maps to [0, 1], and how far beyond [0, 1] they may lie for
// Auto to still show the values as they are.
const (
	autoLow, autoHigh = 0.005, 0.995
	autoSlack         = 0.02
)

// ParseMapping reads a mapping as a command-line flag gives it: "auto", "clip", "minmax", or "/N"
// for Mapping{Divide: N} ("/10" is the tutorial's).
func ParseMapping(s string) (Mapping, error) {
	switch s {
	case "auto":
		return Auto, nil
	case "clip":
		return Clip, nil
	case "minmax":
		return Mapping{MinMax: true}, nil
	}
	if n, ok := strings.CutPrefix(s, "/"); ok {
		if d, err := strconv.ParseFloat(n, 64); err == nil && d > 0 && finite(d) {
			return Mapping{Divide: d}, nil
		}
	}
	return Mapping{}, fmt.Errorf("plots: unknown mapping %q (want auto, clip, minmax or /N, e.g. /10)", s)
}

func (m Mapping) divides() bool { return m.Divide != 0 && m.Divide != 1 }

// fixed reports whether m maps values without looking at them first (Divide or Lo/Hi).
func (m Mapping) fixed() bool { return !m.MinMax && (m.divides() || m.Hi > m.Lo) }

// String describes the mapping for titles and captions; once resolved, with the range it maps, e.g.
// "mapped [-0.12, 1.31] → [0, 1]".
func (m Mapping) String() string {
	switch {
	case m.MinMax:
		return "min-max stretched to [0, 1]"
	case m.divides():
		return fmt.Sprintf("divided by %g, clipped to [0,1]", m.Divide)
	case m.Lo == 0 && m.Hi == 1:
		return "clipped to [0,1]"
	case m.Hi > m.Lo:
		digits := 2.0 // enough to tell the ends apart
		for m.Hi-m.Lo < 10*math.Pow(10, -digits) && digits < 8 {
			digits++
		}
		num := func(v float64) string {
			p := math.Pow(10, digits)
			return strconv.FormatFloat(math.Round(v*p)/p+0, 'f', -1, 64)
		}
		return fmt.Sprintf("mapped [%s, %s] → [0, 1]", num(m.Lo), num(m.Hi))
	}
	return fmt.Sprintf("mapped from its %g–%g percentiles to [0, 1]", 100*autoLow, 100*autoHigh)
}

// Resolve fixes the mapping for a figure showing outputs: for Auto and MinMax it returns the linear
// map [Lo, Hi] → [0, 1] that they choose from all the outputs' values together, any other mapping
// it returns as it is. MinMax takes the smallest and largest value. Auto takes the 0.5th and 99.5th
// percentiles, widened to take in [0, 1] (contrast is never stretched beyond the output's own: an
// output inside [0, 1] is shown as it is, Clip), and takes 0 or 1 for an end that lies within 0.02 of
// it. Non-finite values are left out; with none left, the result is Clip.
func (m Mapping) Resolve(outputs ...*tensors.Tensor) (Mapping, error) {
	if m.fixed() {
		return m, nil
	}
	var vals []float32
	for _, t := range outputs {
		_, _, v, err := imageValues(t)
		if err != nil {
			return Mapping{}, err
		}
		for _, x := range v {
			if finite(float64(x)) {
				vals = append(vals, x)
			}
		}
	}
	if len(vals) == 0 {
		return Clip, nil
	}
	slices.Sort(vals)
	if m.MinMax {
		lo, hi := float64(vals[0]), float64(vals[len(vals)-1])
		if hi <= lo {
			hi = lo + 1
		}
		return Mapping{Lo: lo, Hi: hi}, nil
	}
	at := func(p float64) float64 { return float64(vals[int(math.Round(p*float64(len(vals)-1)))]) }
	lo, hi := math.Min(at(autoLow), 0), math.Max(at(autoHigh), 1)
	if lo > -autoSlack {
		lo = 0
	}
	if hi < 1+autoSlack {
		hi = 1
	}
	return Mapping{Lo: lo, Hi: hi}, nil
}

// imageValues checks that t is a float32 [height, width, 3] (or [1, height, width, 3]) tensor and
// returns its size and values.
func imageValues(t *tensors.Tensor) (h, w int, vals []float32, err error) {
	if t == nil {
		return 0, 0, nil, errors.New("plots: nil tensor")
	}
	d := t.Shape().Dimensions
	if len(d) == 4 && d[0] == 1 {
		d = d[1:]
	}
	if len(d) != 3 || d[2] != 3 || t.DType() != dtypes.Float32 {
		return 0, 0, nil, fmt.Errorf("plots: want a float32 [height, width, 3] tensor, got %s", t.Shape())
	}
	return d[0], d[1], tensors.MustCopyFlatData[float32](t), nil
}

// ToImage maps a float32 [height, width, 3] (or [1, height, width, 3]) tensor to an image and returns
// the fraction of values that fell outside [0, 1] and were clipped. Auto and MinMax are resolved
// against t alone: to show several outputs alike, Resolve the mapping against all of them first.
func (m Mapping) ToImage(t *tensors.Tensor) (image.Image, float64, error) {
	h, w, vals, err := imageValues(t)
	if err != nil {
		return nil, 0, err
	}
	if m, err = m.Resolve(t); err != nil {
		return nil, 0, err
	}
	lo, hi := 0.0, 1.0
	if m.divides() {
		hi = m.Divide
	} else if m.Hi > m.Lo {
		lo, hi = m.Lo, m.Hi
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	clipped := 0
	for i := range h * w {
		var px [3]uint8
		for c := range 3 {
			v := (float64(vals[i*3+c]) - lo) / (hi - lo)
			if !(v >= 0 && v <= 1) {
				clipped++
				v = math.Max(0, math.Min(1, v))
				if math.IsNaN(v) {
					v = 0
				}
			}
			px[c] = uint8(v*255 + 0.5)
		}
		img.SetRGBA(i%w, i/w, color.RGBA{px[0], px[1], px[2], 255})
	}
	return img, float64(clipped) / float64(len(vals)), nil
}

// percent writes a fraction above 0 as a percentage with one decimal, "<0.1%" below that.
func percent(f float64) string {
	if f < 0.0005 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

// Pair is one example of the tutorial's grid: an input image and its resized version.
type Pair struct {
	Input   image.Image
	Resized image.Image
	// Clipped is the fraction of the resized image's values clipped by the display mapping; shown in
	// the title when above zero, so clipping is never hidden.
	Clipped float64
}

// ImageGrid lays pairs out as the tutorial does: "Input Image" and "Resized Image" side by side, two
// pairs per row (the tutorial's 3x4 grid for 6 pairs), titles, no axes; caption, when not empty, goes
// under the grid (say there which Mapping the resized images went through).
func ImageGrid(pairs []Pair, caption string) (*Figure, error) {
	if len(pairs) == 0 {
		return nil, errors.New("plots: no image pairs")
	}
	const perRow = 2
	rows := (len(pairs) + perRow - 1) / perRow
	grid := make([][]*plot.Plot, rows)
	for r := range rows {
		grid[r] = make([]*plot.Plot, 2*perRow)
	}
	for i, p := range pairs {
		if p.Input == nil || p.Resized == nil {
			return nil, fmt.Errorf("plots: pair %d has a nil image", i)
		}
		title := "Resized Image"
		if p.Clipped > 0 {
			title = fmt.Sprintf("Resized Image (%s clipped)", percent(p.Clipped))
		}
		grid[i/perRow][2*(i%perRow)] = imagePanel(p.Input, "Input Image")
		grid[i/perRow][2*(i%perRow)+1] = imagePanel(p.Resized, title)
	}
	fig := tiles(grid, vg.Points(float64(4*180)), vg.Points(float64(rows*190)))
	if caption != "" {
		fig = fig.WithCaption(caption)
	}
	return fig, nil
}
