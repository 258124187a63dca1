// Package plots draws the figures of the keras.io "Learning to Resize Images" tutorial with
// gonum.org/v1/plot: the 3x4 grid of input/resized image pairs, training curves of both models, and the
// with/without comparison as a bar chart. Figures render to PNG or SVG; in GoNB notebooks Show displays
// them inline, and the command line writes the same figures as files.
package plots

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// Figure is a drawing of a given size that renders to PNG or SVG.
type Figure struct {
	Width, Height vg.Length
	draw          func(dc draw.Canvas)
}

// PNG renders the figure at 96 dpi.
func (f *Figure) PNG() ([]byte, error) {
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(96))}
	f.draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SVG renders the figure as SVG.
func (f *Figure) SVG() ([]byte, error) {
	c := vgsvg.New(f.Width, f.Height)
	f.draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes the figure to path (.png or .svg), atomically.
func (f *Figure) Save(path string) error {
	var (
		data []byte
		err  error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		data, err = f.PNG()
	case ".svg":
		data, err = f.SVG()
	default:
		return fmt.Errorf("plots: %s: want a .png or .svg file", path)
	}
	if err != nil {
		return fmt.Errorf("plots: %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, data, 0o644)
}

// tiles draws plots in a rows x cols grid (nil entries stay blank).
func tiles(plots [][]*plot.Plot, w, h vg.Length) *Figure {
	return &Figure{Width: w, Height: h, draw: func(dc draw.Canvas) {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		rows, cols := len(plots), len(plots[0])
		t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 2,
			PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
		canvases := plot.Align(plots, t, dc)
		for j := range rows {
			for i := range cols {
				if plots[j][i] != nil {
					plots[j][i].Draw(canvases[j][i])
				}
			}
		}
	}}
}

// imagePanel is a plot showing img with a title and no axes.
func imagePanel(img image.Image, title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	b := img.Bounds()
	p.Add(plotter.NewImage(img, 0, 0, float64(b.Dx()), float64(b.Dy())))
	p.HideAxes()
	p.X.Min, p.X.Max = 0, float64(b.Dx())
	p.Y.Min, p.Y.Max = 0, float64(b.Dy())
	return p
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Titled is an image with the title drawn above it.
type Titled struct {
	Title string
	Image image.Image
}

// Row draws images of one size side by side, each under its title, on white: at their pixel size
// (96 dpi), or scaled up so that each panel is at least 200 pixels wide and its title fits.
func Row(panels ...Titled) (*Figure, error) {
	if len(panels) == 0 {
		return nil, fmt.Errorf("plots: no images")
	}
	row := make([]*plot.Plot, len(panels))
	var w, h int
	for i, p := range panels {
		if p.Image == nil {
			return nil, fmt.Errorf("plots: panel %q has no image", p.Title)
		}
		row[i] = imagePanel(p.Image, p.Title)
		w, h = max(w, p.Image.Bounds().Dx()), max(h, p.Image.Bounds().Dy())
	}
	scale := max(1, 200/float64(w))
	px := vg.Inch / 96
	pad := vg.Millimeter * 2
	width := vg.Length(float64(w)*scale)*px*vg.Length(len(panels)) + pad*vg.Length(len(panels)+1)
	return tiles([][]*plot.Plot{row}, width, vg.Length(float64(h)*scale)*px+2*pad+vg.Points(22)), nil
}
