// Package summary prints Keras-style model summaries ("Layer (type) / Output Shape / Param #" and
// the total, trainable and non-trainable parameter counts) for GoMLX models.
//
// Builders record their layers in a Recorder while the graph is built; Build then counts each
// layer's parameters from the variables under its scope. As in Keras, batch-norm moving statistics
// count as non-trainable parameters.
package summary

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Layer is one recorded layer.
type Layer struct {
	Name        string // Keras layer name, e.g. "conv2_block1_1_conv".
	Type        string // Keras layer class, e.g. "Conv2D".
	OutputShape []int  // Including the batch axis (printed as None).
	Scope       string // Scope path holding the layer's variables; "" for layers without any.
}

// Recorder collects layers while a model is built. A nil *Recorder ignores everything, so builders
// can record unconditionally.
type Recorder struct {
	layers []Layer
	seen   map[string]bool
}

// Add records a layer whose output is out and whose variables (if any) live under scope (nil if none).
// A layer already recorded under the same name (a graph built twice) is ignored.
func (r *Recorder) Add(name, typ string, out *graph.Node, scope *model.Scope) {
	if r == nil {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[name] {
		return
	}
	r.seen[name] = true
	l := Layer{Name: name, Type: typ, OutputShape: append([]int(nil), out.Shape().Dimensions...)}
	if scope != nil {
		l.Scope = scope.Scope()
	}
	r.layers = append(r.layers, l)
}

// Layers returns the recorded layers in order.
func (r *Recorder) Layers() []Layer {
	if r == nil {
		return nil
	}
	return r.layers
}

// Row is a layer with its parameter count.
type Row struct {
	Layer
	Params int
}

// Summary is a model summary with Keras' totals.
type Summary struct {
	Title                          string
	Rows                           []Row
	Total, Trainable, NonTrainable int
}

// Build counts parameters: per layer, the variables under its scope; in total, every variable
// under root (a scope path such as "/" or "/densenet121").
func Build(title string, r *Recorder, store *model.Store, root string) Summary {
	s := Summary{Title: title}
	root = strings.TrimSuffix(root, "/") + "/"
	for v := range store.IterVariables() {
		if !strings.HasPrefix(v.Path(), root) || strings.Contains(v.Path(), "#") || v.Name() == "global_step" {
			continue
		}
		n := v.Shape().Size()
		s.Total += n
		if v.Trainable {
			s.Trainable += n
		} else {
			s.NonTrainable += n
		}
	}
	for _, l := range r.Layers() {
		row := Row{Layer: l}
		if l.Scope != "" {
			prefix := strings.TrimSuffix(l.Scope, "/") + "/"
			for v := range store.IterVariables() {
				if strings.HasPrefix(v.Path(), prefix) {
					row.Params += v.Shape().Size()
				}
			}
		}
		s.Rows = append(s.Rows, row)
	}
	return s
}

// ShapeString formats a shape the Keras way: (None, 75, 75, 64).
func ShapeString(dims []int) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		if i == 0 {
			parts[i] = "None"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// Commas formats an integer with thousands separators: 7039554 -> "7,039,554".
func Commas(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesString(params int) string {
	b := float64(params) * 4
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.2f KB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// String renders the summary like Keras' model.summary() (float32 sizes).
func (s Summary) String() string {
	nameW, shapeW := len("Layer (type)"), len("Output Shape")
	for _, r := range s.Rows {
		nameW = max(nameW, len(r.Name)+len(r.Type)+3)
		shapeW = max(shapeW, len(ShapeString(r.OutputShape)))
	}
	width := nameW + shapeW + 16
	var b strings.Builder
	fmt.Fprintf(&b, "Model: %q\n", s.Title)
	line := func(c string) { b.WriteString(strings.Repeat(c, width) + "\n") }
	line("_")
	fmt.Fprintf(&b, " %-*s  %-*s  %12s\n", nameW, "Layer (type)", shapeW, "Output Shape", "Param #")
	line("=")
	for _, r := range s.Rows {
		fmt.Fprintf(&b, " %-*s  %-*s  %12s\n", nameW, fmt.Sprintf("%s (%s)", r.Name, r.Type), shapeW,
			ShapeString(r.OutputShape), Commas(r.Params))
	}
	line("=")
	fmt.Fprintf(&b, "Total params: %s (%s)\n", Commas(s.Total), bytesString(s.Total))
	fmt.Fprintf(&b, "Trainable params: %s (%s)\n", Commas(s.Trainable), bytesString(s.Trainable))
	fmt.Fprintf(&b, "Non-trainable params: %s (%s)\n", Commas(s.NonTrainable), bytesString(s.NonTrainable))
	return b.String()
}
