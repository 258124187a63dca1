// Package onnxexport writes trained models as ONNX files, so that a resizer trained here runs in
// other runtimes (ONNX Runtime from Python, C++, JavaScript; anything that reads ONNX).
//
// The ONNX graph is written from the model's own structure, layer by layer, with standard opset-18
// operators and names that read like the Keras layers (conv2d_1, batch_normalization, ...): not
// translated from a GoMLX graph, whose CPU formulations (im2col, strided slices, banded resizes) are
// an implementation detail of training. Batch norm is exported in inference form (its moving
// statistics). The protobuf types are compute-onnx's (github.com/gomlx/compute-onnx/support/protos,
// generated from ONNX's own onnx-ml.proto), marshalled with google.golang.org/protobuf.
package onnxexport

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"google.golang.org/protobuf/proto"

	"github.com/learnresize/learnresize/resizer"
)

// Opset is the ONNX operator set the files use.
const Opset = 18

// The input and output names of resizer.onnx.
const (
	ResizerInput  = "images"
	ResizerOutput = "resized"
)

// Resizer returns the trained resizer m as an ONNX model: input "images", float32 [N, H, W, 3]
// (N, H and W free; values as the resizer was trained on, pixels / 255 in the tutorial), output
// "resized", float32 [N, target height, target width, 3], unclipped, as Model.ResizeTensor gives.
// Only bilinear resizers are exported: tf.image.resize's bilinear with half-pixel centres is ONNX's
// Resize (linear, half_pixel); its bicubic (weights quantised to 1/1024) and area have no exact
// ONNX equivalent.
func Resizer(m *resizer.Model) ([]byte, error) {
	cfg := m.Config()
	if err := exportable(cfg.Interpolation); err != nil {
		return nil, err
	}
	w := &writer{store: m.Store()}
	return w.imageGraph("learnable_resizer", fmt.Sprintf("learnable resizer %s", cfg), cfg.TargetHeight, cfg.TargetWidth,
		func(x string) string { return w.resizer(x, cfg) }, "/"+resizer.ScopeName+"/")
}

// imageGraph is a model from images to images at height x width (Resizer's input and output,
// float32 NHWC, N, H and W free), body the layers on NCHW, the variables under prefixes all read.
func (w *writer) imageGraph(name, doc string, height, width int, body func(x string) string, prefixes ...string) ([]byte, error) {
	// NHWC in, as the Go model takes it; ONNX's convolutions are NCHW.
	x := w.node("Transpose", "images_nchw", []string{ResizerInput}, ints("perm", 0, 3, 1, 2))
	w.node("Transpose", ResizerOutput, []string{body(x)}, ints("perm", 0, 2, 3, 1))
	if err := w.check(prefixes...); err != nil {
		return nil, err
	}
	g := &protos.GraphProto{
		Name:        name,
		Node:        w.nodes,
		Initializer: w.inits,
		Input:       []*protos.ValueInfoProto{valueInfo(ResizerInput, protos.TensorProto_FLOAT, dim("N"), dim("H"), dim("W"), fixed(3))},
		Output: []*protos.ValueInfoProto{valueInfo(ResizerOutput, protos.TensorProto_FLOAT, dim("N"),
			fixed(int64(height)), fixed(int64(width)), fixed(3))},
	}
	return marshal(g, doc)
}

// exportable refuses the interpolations ONNX's Resize does not compute exactly.
func exportable(m resizer.Method) error {
	if m != resizer.Bilinear {
		return fmt.Errorf("onnxexport: %s interpolation: only bilinear (tf.image.resize's, half-pixel centres) exports exactly, "+
			"as ONNX's Resize linear half_pixel; its bicubic (weights quantised to 1/1024) and area have no exact equivalent", m)
	}
	return nil
}

// resize adds tf.image.resize's bilinear (half-pixel centres, no antialiasing) of NCHW in to the
// target size: ONNX's Resize, linear, half_pixel, on the spatial axes.
//
// Its sizes are all four of the output's, [N, C] taken from the input's shape: onnxruntime-web
// 1.30's shape inference refuses Resize's axes attribute (sizes of two values for four dimensions).
func (w *writer) resize(name, in string, height, width int) string {
	nc := w.node("Shape", name+"/batch_channels", []string{in}, intAttr("start", 0), intAttr("end", 2))
	sizes := w.node("Concat", name+"/sizes", []string{nc, w.constInt64(name+"/size", int64(height), int64(width))},
		intAttr("axis", 0))
	return w.node("Resize", name, []string{in, "", "", sizes},
		str("mode", "linear"), str("coordinate_transformation_mode", "half_pixel"))
}

// resizer adds the learnable resizer's layers (resizer.Builder.Done's, in its order and so with its
// Keras names) on NCHW in, its variables under /learnable_resizer/, and returns its output.
func (w *writer) resizer(x string, cfg resizer.Config) string {
	scope := "/" + resizer.ScopeName + "/"
	convs, bns := 0, 0
	conv := func(in string, kernel int, bias bool) string {
		name := kerasName("conv2d", convs)
		convs++
		return w.conv(scope, name, in, kernel, 1, kernel/2, bias)
	}
	bn := func(in string) string {
		name := kerasName("batch_normalization", bns)
		bns++
		return w.batchNorm(scope, name, in, resizer.BatchNormEpsilon)
	}
	leaky := func(in string) string {
		return w.node("LeakyRelu", in+"_leaky_re_lu", []string{in}, float("alpha", resizer.LeakyAlpha))
	}
	naive := w.resize("naive_resize", x, cfg.TargetHeight, cfg.TargetWidth)
	h := leaky(conv(x, 7, true))
	h = bn(leaky(conv(h, 1, true)))
	bottleneck := w.resize("bottleneck_resize", h, cfg.TargetHeight, cfg.TargetWidth)
	r := bottleneck
	for i := range cfg.ResBlocks {
		y := leaky(bn(conv(r, 3, false)))
		y = bn(conv(y, 3, false))
		r = w.node("Add", fmt.Sprintf("residual_block_%d", i), []string{r, y})
	}
	r = w.node("Add", "projection", []string{bn(conv(r, 3, false)), bottleneck})
	return w.node("Add", "learnable_resizer", []string{conv(r, 7, true), naive})
}

// WriteResizer writes Resizer(m) to path.
func WriteResizer(m *resizer.Model, path string) error {
	b, err := Resizer(m)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func marshal(g *protos.GraphProto, doc string) ([]byte, error) {
	mp := &protos.ModelProto{
		IrVersion:       8, // ONNX 1.13+, the IR of opset 18
		OpsetImport:     []*protos.OperatorSetIdProto{{Domain: "", Version: Opset}},
		ProducerName:    "learnresize",
		ProducerVersion: "onnxexport",
		DocString:       doc,
		Graph:           g,
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("onnxexport: %w", err)
	}
	return b, nil
}

// writer accumulates an ONNX graph's nodes and initializers, reading the weights from a store.
type writer struct {
	store *model.Store
	nodes []*protos.NodeProto
	inits []*protos.TensorProto
	used  map[string]bool
	err   error
}

// node adds an operator whose single output is named name, and returns that name.
func (w *writer) node(op, name string, inputs []string, attrs ...*protos.AttributeProto) string {
	w.nodes = append(w.nodes, &protos.NodeProto{OpType: op, Name: name, Input: inputs, Output: []string{name}, Attribute: attrs})
	return name
}

// variable returns the float32 values and dimensions of the store's variable at full.
func (w *writer) variable(full string) ([]float32, []int) {
	if w.err != nil {
		return nil, nil
	}
	v := w.store.GetVariable(full)
	if v == nil {
		w.err = fmt.Errorf("onnxexport: variable %s not found", full)
		return nil, nil
	}
	if w.used == nil {
		w.used = map[string]bool{}
	}
	w.used[full] = true
	t, err := v.Value()
	if err != nil {
		w.err = fmt.Errorf("onnxexport: %s: %w", full, err)
		return nil, nil
	}
	if t.DType() != dtypes.Float32 {
		w.err = fmt.Errorf("onnxexport: %s is %s, want float32", full, t.DType())
		return nil, nil
	}
	return tensors.MustCopyFlatData[float32](t), t.Shape().Dimensions
}

// check returns the first error of the writing, or, if a variable of the model's scopes (prefixes:
// optimizer state and GoMLX's own variables lie outside them) was not read, says which: a layer this
// writer does not know would otherwise be left out silently.
func (w *writer) check(prefixes ...string) error {
	if w.err != nil {
		return w.err
	}
	if len(prefixes) == 0 {
		return nil
	}
	var unused []string
	for v := range w.store.IterVariables() {
		p := v.Path()
		for _, pre := range prefixes {
			if strings.HasPrefix(p, pre) && !w.used[p] {
				unused = append(unused, p)
			}
		}
	}
	if len(unused) > 0 {
		return fmt.Errorf("onnxexport: the model's variables %s were not exported (a layer this writer does not know)", strings.Join(unused, ", "))
	}
	return nil
}

func (w *writer) initializer(name string, dims []int64, vals []float32) string {
	w.inits = append(w.inits, &protos.TensorProto{Name: name, Dims: dims, DataType: int32(protos.TensorProto_FLOAT), FloatData: vals})
	return name
}

func (w *writer) constInt64(name string, vals ...int64) string {
	w.inits = append(w.inits, &protos.TensorProto{Name: name, Dims: []int64{int64(len(vals))}, DataType: int32(protos.TensorProto_INT64), Int64Data: vals})
	return name
}

// conv adds a Keras Conv2D named name (variables under scope+name) with stride and pad zeros on
// every side ("same" at stride 1 is k/2). Its kernel, stored [k, k, in, out] as Keras does, is
// written [out, in, k, k] as ONNX wants.
func (w *writer) conv(scope, name, in string, kernel, stride, pad int, bias bool) string {
	vals, d := w.variable(scope + name + "/kernel")
	if w.err != nil {
		return name
	}
	if len(d) != 4 || d[0] != kernel || d[1] != kernel {
		w.err = fmt.Errorf("onnxexport: %s%s/kernel has shape %v, want [%d, %d, in, out]", scope, name, d, kernel, kernel)
		return name
	}
	k, cin, cout := d[0], d[2], d[3]
	oihw := make([]float32, len(vals))
	for i := range k {
		for j := range k {
			for c := range cin {
				for o := range cout {
					oihw[((o*cin+c)*k+i)*k+j] = vals[((i*k+j)*cin+c)*cout+o]
				}
			}
		}
	}
	inputs := []string{in, w.initializer(name+"/kernel", []int64{int64(cout), int64(cin), int64(k), int64(k)}, oihw)}
	if bias {
		b, _ := w.variable(scope + name + "/bias")
		inputs = append(inputs, w.initializer(name+"/bias", []int64{int64(cout)}, b))
	}
	p := int64(pad)
	return w.node("Conv", name, inputs, ints("kernel_shape", int64(k), int64(k)), ints("strides", int64(stride), int64(stride)),
		ints("pads", p, p, p, p))
}

// batchNorm adds a Keras BatchNormalization in inference form (moving statistics).
func (w *writer) batchNorm(scope, name, in string, epsilon float64) string {
	inputs := []string{in}
	for _, v := range []string{"gamma", "beta", "moving_mean", "moving_variance"} {
		vals, _ := w.variable(scope + name + "/" + v)
		inputs = append(inputs, w.initializer(name+"/"+v, []int64{int64(len(vals))}, vals))
	}
	return w.node("BatchNormalization", name, inputs, float("epsilon", epsilon))
}

// kerasName numbers layers as Keras does: conv2d, conv2d_1, ...
func kerasName(base string, i int) string {
	if i == 0 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, i)
}

func intAttr(name string, v int64) *protos.AttributeProto {
	return &protos.AttributeProto{Name: name, Type: protos.AttributeProto_INT, I: v}
}

func ints(name string, v ...int64) *protos.AttributeProto {
	return &protos.AttributeProto{Name: name, Type: protos.AttributeProto_INTS, Ints: v}
}

func float(name string, v float64) *protos.AttributeProto {
	return &protos.AttributeProto{Name: name, Type: protos.AttributeProto_FLOAT, F: float32(v)}
}

func str(name, v string) *protos.AttributeProto {
	return &protos.AttributeProto{Name: name, Type: protos.AttributeProto_STRING, S: []byte(v)}
}

func dim(param string) *protos.TensorShapeProto_Dimension {
	return &protos.TensorShapeProto_Dimension{Value: &protos.TensorShapeProto_Dimension_DimParam{DimParam: param}}
}

func fixed(n int64) *protos.TensorShapeProto_Dimension {
	return &protos.TensorShapeProto_Dimension{Value: &protos.TensorShapeProto_Dimension_DimValue{DimValue: n}}
}

func valueInfo(name string, dtype protos.TensorProto_DataType, dims ...*protos.TensorShapeProto_Dimension) *protos.ValueInfoProto {
	return &protos.ValueInfoProto{Name: name, Type: &protos.TypeProto{Value: &protos.TypeProto_TensorType{
		TensorType: &protos.TypeProto_Tensor{ElemType: int32(dtype), Shape: &protos.TensorShapeProto{Dim: dims}},
	}}}
}

// Bilinear returns tf.image.resize's bilinear resize to height x width as an ONNX model, with
// Resizer's input and output (float32 NHWC, H and W free): the plain resize the learned one is shown
// beside, computed the same way wherever the models run.
func Bilinear(height, width int) ([]byte, error) {
	if height <= 0 || width <= 0 {
		return nil, fmt.Errorf("onnxexport: target size %dx%d must be positive", height, width)
	}
	w := &writer{}
	return w.imageGraph("bilinear_resize", fmt.Sprintf("tf.image.resize bilinear to %dx%d", height, width), height, width,
		func(x string) string { return w.resize("resizing", x, height, width) })
}
