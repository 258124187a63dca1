package plots

import (
	"errors"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/learnresize/learnresize/training"
)

// captioned draws a caption line under the figure drawn by inner.
func captioned(inner func(draw.Canvas), caption string) func(draw.Canvas) {
	return func(dc draw.Canvas) {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		const h = 24
		body := dc
		body.Rectangle.Min.Y += vg.Points(h)
		inner(body)
		sty := draw.TextStyle{Color: color.Gray{Y: 60}, Font: font.From(plot.DefaultFont, vg.Points(10)),
			XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler}
		dc.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Min.Y + vg.Points(h/2)}, caption)
	}
}

// Series is one model's history, named for the legend.
type Series struct {
	Name    string
	History *training.History
}

var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255},
}

// Curves plots loss and accuracy per epoch, training (dashed) and validation (solid), of every
// series on two panels side by side.
func Curves(series []Series) (*Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("plots: no histories")
	}
	loss, acc := plot.New(), plot.New()
	loss.Title.Text, acc.Title.Text = "Loss (cross-entropy, label smoothing)", "Accuracy"
	for _, p := range []*plot.Plot{loss, acc} {
		p.X.Label.Text = "epoch"
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
	}
	loss.Y.Label.Text, acc.Y.Label.Text = "loss", "top-1 accuracy"
	acc.Legend.Top = false // accuracy rises: keep the legend bottom right, off the curves' ends
	for i, s := range series {
		if s.History == nil || len(s.History.Epochs) == 0 {
			return nil, fmt.Errorf("plots: series %q has no epochs", s.Name)
		}
		col := palette[i%len(palette)]
		for _, m := range []struct {
			p            *plot.Plot
			train, val   func(e training.EpochStats) float64
			trainN, valN string
		}{
			{loss, func(e training.EpochStats) float64 { return e.Loss }, func(e training.EpochStats) float64 { return e.ValLoss }, "train", "validation"},
			{acc, func(e training.EpochStats) float64 { return e.Accuracy }, func(e training.EpochStats) float64 { return e.ValAccuracy }, "train", "validation"},
		} {
			for k, f := range []func(e training.EpochStats) float64{m.train, m.val} {
				pts := make(plotter.XYs, 0, len(s.History.Epochs))
				for _, e := range s.History.Epochs {
					if v := f(e); finite(v) {
						pts = append(pts, plotter.XY{X: float64(e.Epoch), Y: v})
					}
				}
				line, points, err := plotter.NewLinePoints(pts)
				if err != nil {
					return nil, err
				}
				line.Color, points.Color = col, col
				line.Width = vg.Points(1.5)
				name := s.Name + " " + m.valN
				if k == 0 {
					line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
					points.Shape = draw.CircleGlyph{}
					name = s.Name + " " + m.trainN
				} else {
					points.Shape = draw.BoxGlyph{}
				}
				m.p.Add(line, points)
				m.p.Legend.Add(name, line, points)
			}
		}
	}
	return tiles([][]*plot.Plot{{loss, acc}}, vg.Points(900), vg.Points(380)), nil
}

// ComparisonBars draws the tutorial's comparison as bars of final top-1 validation accuracy per model
// (mean over seeds, with ±1 standard deviation error bars when there are several seeds).
func ComparisonBars(cmp *training.Comparison) (*Figure, error) {
	if cmp == nil || len(cmp.Rows) == 0 {
		return nil, errors.New("plots: empty comparison")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Top-1 validation accuracy after %d epochs (%d seed(s))", cmp.Config.Epochs, len(cmp.Seeds))
	p.Y.Label.Text = "accuracy (%)"
	vals := make(plotter.Values, len(cmp.Rows))
	errs := make(plotter.YErrors, len(cmp.Rows))
	names := make([]string, len(cmp.Rows))
	for i, r := range cmp.Rows {
		vals[i] = 100 * r.Mean
		errs[i].Low, errs[i].High = 100*r.Std, 100*r.Std
		names[i] = fmt.Sprintf("%s\n%.6fM params", r.Model, float64(r.Params)/1e6)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(60))
	if err != nil {
		return nil, err
	}
	bars.Color = palette[0]
	p.Add(plotter.NewGrid(), bars)
	if len(cmp.Seeds) > 1 {
		xys := make(plotter.XYs, len(vals))
		for i, v := range vals {
			xys[i] = plotter.XY{X: float64(i), Y: v}
		}
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{xys, errs})
		if err != nil {
			return nil, err
		}
		p.Add(eb)
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max = 100
	return tiles([][]*plot.Plot{{p}}, vg.Points(560), vg.Points(380)), nil
}
