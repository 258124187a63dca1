package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/learnresize/learnresize/training"
)

// captionHeight is the height of the caption line under a figure.
const captionHeight = 24

// WithCaption returns the figure with a caption line under it (the figure grows by the line).
func (f *Figure) WithCaption(caption string) *Figure {
	return &Figure{Width: f.Width, Height: f.Height + vg.Points(captionHeight), draw: captioned(f.draw, caption)}
}

// captioned draws a caption line under the figure drawn by inner.
func captioned(inner func(draw.Canvas), caption string) func(draw.Canvas) {
	return func(dc draw.Canvas) {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		body := dc
		body.Rectangle.Min.Y += vg.Points(captionHeight)
		inner(body)
		sty := draw.TextStyle{Color: color.Gray{Y: 60}, Font: font.From(plot.DefaultFont, vg.Points(10)),
			XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler}
		dc.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Min.Y + vg.Points(captionHeight/2)}, caption)
	}
}

// Series is one run's history. Series with the same Name (a model's runs with several seeds) share a
// legend entry, and each is drawn. Each is drawn in its model's colour, ModelColor(Name), the colour
// of the model's bar in ComparisonBars.
type Series struct {
	Name    string
	History *training.History
	// ValMajority, when above 0, is the validation accuracy of always answering the most frequent
	// class: drawn as a dotted line, so that a reader sees when a model has learnt nothing.
	ValMajority float64
}

// epochTicks labels whole epochs only (at most about ten labels).
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	step := math.Max(1, math.Ceil((max-min)/10))
	var ticks []plot.Tick
	for e := math.Ceil(min); e <= max; e += step {
		ticks = append(ticks, plot.Tick{Value: e, Label: strconv.Itoa(int(e))})
	}
	return ticks
}

// Curves plots loss and accuracy per epoch, training (dashed) and validation (solid), of every
// series on two panels side by side, with the legend below them, off the data.
func Curves(series []Series) (*Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("plots: no histories")
	}
	loss, acc := plot.New(), plot.New()
	loss.Title.Text, acc.Title.Text = "Loss (cross-entropy, label smoothing)", "Accuracy"
	loss.Y.Label.Text, acc.Y.Label.Text = "loss", "top-1 accuracy"
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	colors := map[string]color.Color{}
	first, last, majority := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range series {
		if s.History == nil || len(s.History.Epochs) == 0 {
			return nil, fmt.Errorf("plots: series %q has no epochs", s.Name)
		}
		col, seen := colors[s.Name]
		if !seen {
			col = ModelColor(s.Name)
			colors[s.Name] = col
		}
		majority = math.Max(majority, s.ValMajority)
		for _, e := range s.History.Epochs {
			first, last = math.Min(first, float64(e.Epoch)), math.Max(last, float64(e.Epoch))
		}
		lossLegend := &legend
		if seen { // one legend entry per model, whatever its number of seeds
			lossLegend = nil
		}
		if err := addCurves(loss, lossLegend, s, col, func(e training.EpochStats) (float64, float64) { return e.Loss, e.ValLoss }); err != nil {
			return nil, err
		}
		if err := addCurves(acc, nil, s, col, func(e training.EpochStats) (float64, float64) { return e.Accuracy, e.ValAccuracy }); err != nil {
			return nil, err
		}
	}
	for _, p := range []*plot.Plot{loss, acc} {
		p.X.Label.Text = "epoch"
		p.X.Tick.Marker = epochTicks{}
		p.X.Min, p.X.Max = first-0.15, last+0.15
		p.Add(plotter.NewGrid())
	}
	if majority > 0 {
		base, err := plotter.NewLine(plotter.XYs{{X: first - 0.15, Y: majority}, {X: last + 0.15, Y: majority}})
		if err != nil {
			return nil, err
		}
		base.Color = color.Gray{Y: 90}
		base.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		base.Width = vg.Points(1.5)
		acc.Add(base)
		legend.Add(fmt.Sprintf("validation accuracy of always answering the most frequent class (%.1f%%)", 100*majority), base)
	}
	panels := tiles([][]*plot.Plot{{loss, acc}}, vg.Points(900), vg.Points(360))
	return withLegendBelow(panels, legend), nil
}

// addCurves draws one series' training (dashed, circles) and validation (solid, squares) values of
// a metric on p, adding legend entries when legend is not nil.
func addCurves(p *plot.Plot, legend *plot.Legend, s Series, col color.Color, metric func(training.EpochStats) (train, val float64)) error {
	for k, name := range []string{s.Name + ", training", s.Name + ", validation"} {
		pts := make(plotter.XYs, 0, len(s.History.Epochs))
		for _, e := range s.History.Epochs {
			tr, va := metric(e)
			if v := [2]float64{tr, va}[k]; finite(v) {
				pts = append(pts, plotter.XY{X: float64(e.Epoch), Y: v})
			}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = col, col
		line.Width = vg.Points(1.5)
		points.Shape = draw.BoxGlyph{}
		if k == 0 {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			points.Shape = draw.CircleGlyph{}
		}
		p.Add(line, points)
		if legend != nil {
			legend.Add(name, line, points)
		}
	}
	return nil
}

// withLegendBelow draws legend in a strip under the figure f, the figure growing by the strip.
func withLegendBelow(f *Figure, legend plot.Legend) *Figure {
	entries := legend.Rectangle(draw.Canvas{}).Size().Y
	strip := entries + vg.Points(16)
	return &Figure{Width: f.Width, Height: f.Height + strip, draw: func(dc draw.Canvas) {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		top := dc
		top.Rectangle.Min.Y += strip
		f.draw(top)
		box := dc
		box.Rectangle.Max.Y = dc.Min.Y + strip - vg.Points(4)
		box.Rectangle.Min.X += vg.Points(60)
		legend.Draw(box)
	}}
}

// ComparisonBars draws the tutorial's comparison as bars of final top-1 validation accuracy per model
// (mean over seeds, with ±1 standard deviation error bars when there are several seeds), each bar in
// its model's colour (ModelColor, as in Curves).
// (One piece: one plot's bars, error bars, labels and axes, drawn in the order they stack.)
func ComparisonBars(cmp *training.Comparison) (*Figure, error) {
	if cmp == nil || len(cmp.Rows) == 0 {
		return nil, errors.New("plots: empty comparison")
	}
	p := plot.New()
	seeds := "1 seed"
	if len(cmp.Seeds) != 1 {
		seeds = fmt.Sprintf("%d seeds: mean ± standard deviation", len(cmp.Seeds))
	}
	p.Title.Text = fmt.Sprintf("Top-1 validation accuracy after %d epochs (%s)", cmp.Config.Epochs, seeds)
	p.Y.Label.Text = "accuracy (%)"
	vals := make(plotter.Values, len(cmp.Rows))
	errs := make(plotter.YErrors, len(cmp.Rows))
	names := make([]string, len(cmp.Rows))
	for i, r := range cmp.Rows {
		vals[i] = 100 * r.Mean
		errs[i].Low, errs[i].High = 100*r.Std, 100*r.Std
		names[i] = fmt.Sprintf("%s\n%.6fM params", wrap(r.Model, 26), float64(r.Params)/1e6)
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // horizontal lines only: vertical ones would frame the bars' tops
	p.Add(grid)
	for i, v := range vals { // one chart per bar, each in its model's colour
		bar, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(60))
		if err != nil {
			return nil, err
		}
		bar.XMin = float64(i)
		bar.Color = ModelColor(cmp.Rows[i].Model)
		p.Add(bar)
	}
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
	// The values on the bars: the figure must not need the table beside it.
	labels := plotter.XYLabels{}
	for i, v := range vals {
		text := fmt.Sprintf("%.1f%%", v)
		if len(cmp.Seeds) > 1 {
			text += fmt.Sprintf(" ± %.1f", errs[i].High)
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v + errs[i].High + 1.5})
		labels.Labels = append(labels.Labels, text)
	}
	lab, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].XAlign = draw.XCenter
		lab.TextStyle[i].Font.Size = vg.Points(12)
	}
	p.Add(lab)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(vals))-0.5 // the same margin beside the first and last bar
	p.Y.Min = 0
	p.Y.Max = 100
	width := max(560, 170*len(cmp.Rows)) // room for each model's wrapped name
	return tiles([][]*plot.Plot{{p}}, vg.Points(float64(width)), vg.Points(380+12*float64(maxLines(names)-2))), nil
}

// wrap breaks s at spaces into lines of at most width characters (longer words stay whole), so that
// the names under neighbouring bars do not run into each other.
func wrap(s string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

// maxLines is the largest number of lines in any of labels.
func maxLines(labels []string) int {
	n := 1
	for _, l := range labels {
		n = max(n, strings.Count(l, "\n")+1)
	}
	return n
}
