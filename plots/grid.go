package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// Mapping turns resizer outputs, which are not confined to [0, 1], into displayable pixels.
type Mapping struct {
	// Divide scales values by 1/Divide before clipping (the tutorial divides by 10 after training
	// and lets matplotlib clip). 0 or 1: no scaling.
	Divide float64
	// MinMax stretches each image's own range to [0, 1] instead of clipping (nothing is clipped, but
	// brightness is no longer comparable between images).
	MinMax bool
}

// String describes the mapping for titles and captions.
func (m Mapping) String() string {
	switch {
	case m.MinMax:
		return "min-max stretched"
	case m.Divide != 0 && m.Divide != 1:
		return fmt.Sprintf("divided by %g, clipped to [0,1]", m.Divide)
	}
	return "clipped to [0,1]"
}

// ToImage maps a float32 [height, width, 3] (or [1, height, width, 3]) tensor to an image and returns
// the fraction of values that fell outside [0, 1] and were clipped (0 with MinMax).
func (m Mapping) ToImage(t *tensors.Tensor) (image.Image, float64, error) {
	if t == nil {
		return nil, 0, errors.New("plots: nil tensor")
	}
	d := t.Shape().Dimensions
	if len(d) == 4 && d[0] == 1 {
		d = d[1:]
	}
	if len(d) != 3 || d[2] != 3 || t.DType() != dtypes.Float32 {
		return nil, 0, fmt.Errorf("plots: want a float32 [height, width, 3] tensor, got %s", t.Shape())
	}
	h, w := d[0], d[1]
	vals := tensors.MustCopyFlatData[float32](t)
	lo, hi, scale := 0.0, 1.0, 1.0
	if m.Divide != 0 {
		scale = 1 / m.Divide
	}
	if m.MinMax {
		lo, hi = math.Inf(1), math.Inf(-1)
		for _, v := range vals {
			if finite(float64(v)) {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
		}
		scale = 1
		if hi <= lo {
			hi = lo + 1
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	clipped := 0
	for i := range h * w {
		var px [3]uint8
		for c := range 3 {
			v := float64(vals[i*3+c]) * scale
			if m.MinMax {
				v = (v - lo) / (hi - lo)
			}
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

// Pair is one example of the tutorial's grid: an input image and its resized version.
type Pair struct {
	Input   image.Image
	Resized image.Image
	// Clipped is the fraction of the resized image's values clipped by the display mapping; shown in
	// the title when above zero, so clipping is never hidden.
	Clipped float64
}

// ImageGrid lays pairs out as the tutorial does: "Input Image" and "Resized Image" side by side, two
// pairs per row (the tutorial's 3x4 grid for 6 pairs), titles, no axes.
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
			title = fmt.Sprintf("Resized Image (%.1f%% clipped)", 100*p.Clipped)
		}
		grid[i/perRow][2*(i%perRow)] = imagePanel(p.Input, "Input Image")
		grid[i/perRow][2*(i%perRow)+1] = imagePanel(p.Resized, title)
	}
	fig := tiles(grid, vg.Points(float64(4*180)), vg.Points(float64(rows*190)))
	if caption != "" {
		inner := fig.draw
		fig.Height += vg.Points(24)
		fig.draw = captioned(inner, caption)
	}
	return fig, nil
}
