package onnxexport

import (
	"fmt"
	"os"

	"github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/densenet"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resnet"
)

// The input and outputs of model.onnx.
const (
	ClassifierInput = "images"
	Logits          = "logits"
	Probabilities   = "probabilities"
)

// Classifier returns the whole trained classifier of cfg, its weights in store (a training run's:
// training.LoadRun), as an ONNX model: input "images", uint8 [N, InputHeight, InputWidth, 3] (the
// pixels, as the training pipeline feeds them), outputs "logits" and "probabilities" (softmax),
// float32 [N, Classes]. The layers are models.Build's in inference mode: Rescaling(1/255), the
// learnable resizer or the plain bilinear resize, the optional ImageNet normalisation, and the
// backbone (DenseNet, or ResNet in either layout).
func Classifier(store *model.Store, cfg models.Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("onnxexport: %w", err)
	}
	if cfg.BFloat16 {
		return nil, fmt.Errorf("onnxexport: a bfloat16 model: export its float32 weights' model (bfloat16 is a training option)")
	}
	if err := exportable(cfg.Interpolation); err != nil {
		return nil, err
	}
	w := &writer{store: store}
	x := w.node("Cast", "images_float", []string{ClassifierInput}, intAttr("to", int64(protos.TensorProto_FLOAT)))
	x = w.node("Transpose", "images_nchw", []string{x}, ints("perm", 0, 3, 1, 2))
	x = w.node("Mul", "rescaling", []string{x, w.initializer("rescaling/scale", nil, []float32{1.0 / 255})})
	prefixes := []string{"/" + cfg.BackboneScope() + "/"}
	if cfg.Resizer {
		x = w.resizer(x, cfg.ResizerConfig())
		prefixes = append(prefixes, "/learnable_resizer/")
	} else {
		x = w.resize("resizing", x, cfg.TargetHeight, cfg.TargetWidth)
	}
	if cfg.Normalize == models.NormalizeImageNet {
		mean, std := models.ImageNetStatistics()
		m := w.initializer("normalization/mean", []int64{1, 3, 1, 1}, []float32{float32(mean[0]), float32(mean[1]), float32(mean[2])})
		inv := w.initializer("normalization/inverse_std", []int64{1, 3, 1, 1}, []float32{float32(1 / std[0]), float32(1 / std[1]), float32(1 / std[2])})
		x = w.node("Mul", "normalization", []string{w.node("Sub", "normalization_centered", []string{x, m}), inv})
	}
	var logits string
	if cfg.IsResNet() {
		logits = w.resNet(x, cfg)
	} else {
		logits = w.denseNet(x, cfg)
	}
	w.node("Identity", Logits, []string{logits})
	w.node("Softmax", Probabilities, []string{logits}, intAttr("axis", 1))
	if err := w.check(prefixes...); err != nil {
		return nil, err
	}
	n, classes := dim("N"), fixed(int64(cfg.Classes))
	g := &protos.GraphProto{
		Name:        cfg.Name(),
		Node:        w.nodes,
		Initializer: w.inits,
		Input: []*protos.ValueInfoProto{valueInfo(ClassifierInput, protos.TensorProto_UINT8, n,
			fixed(int64(cfg.InputHeight)), fixed(int64(cfg.InputWidth)), fixed(3))},
		Output: []*protos.ValueInfoProto{valueInfo(Logits, protos.TensorProto_FLOAT, n, classes),
			valueInfo(Probabilities, protos.TensorProto_FLOAT, n, classes)},
	}
	return marshal(g, cfg.String())
}

// WriteClassifier writes Classifier(store, cfg) to path.
func WriteClassifier(store *model.Store, cfg models.Config, path string) error {
	b, err := Classifier(store, cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// denseNet adds densenet.Builder.Done's layers (with its Keras names: conv1_conv, conv2_block1_0_bn,
// pool2_conv, ..., predictions) on NCHW x and returns the logits.
func (w *writer) denseNet(x string, cfg models.Config) string {
	scope := "/" + cfg.BackboneScope() + "/"
	blocks := cfg.Blocks // the widths (growth, bottleneck, compression) are the kernels' shapes
	if len(blocks) == 0 {
		p, ok := densenet.PresetBlocks(cfg.Preset)
		if !ok {
			w.err = fmt.Errorf("onnxexport: unknown DenseNet preset %q", cfg.Preset)
			return x
		}
		blocks = p
	}
	bn := func(name, in string) string { return w.batchNorm(scope, name, in, densenet.BatchNormEpsilon) }
	relu := func(name, in string) string { return w.node("Relu", name, []string{in}) }
	pads := 0
	pad := func(in string, p int64) string {
		name := kerasName("zero_padding2d", pads)
		pads++
		return w.node("Pad", name, []string{in, w.constInt64(name+"/pads", 0, 0, p, p, 0, 0, p, p)})
	}
	x = pad(x, 3)
	x = w.conv(scope, "conv1_conv", x, 7, 2, 0, false)
	x = relu("conv1_relu", bn("conv1_bn", x))
	x = pad(x, 1)
	x = w.node("MaxPool", "pool1", []string{x}, ints("kernel_shape", 3, 3), ints("strides", 2, 2))
	for i, count := range blocks {
		for j := range count {
			name := fmt.Sprintf("conv%d_block%d", i+2, j+1)
			y := relu(name+"_0_relu", bn(name+"_0_bn", x))
			y = w.conv(scope, name+"_1_conv", y, 1, 1, 0, false)
			y = relu(name+"_1_relu", bn(name+"_1_bn", y))
			y = w.conv(scope, name+"_2_conv", y, 3, 1, 1, false)
			x = w.node("Concat", name+"_concat", []string{x, y}, intAttr("axis", 1))
		}
		if i < len(blocks)-1 {
			name := fmt.Sprintf("pool%d", i+2)
			x = relu(name+"_relu", bn(name+"_bn", x))
			x = w.conv(scope, name+"_conv", x, 1, 1, 0, false)
			x = w.node("AveragePool", name+"_pool", []string{x}, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
		}
	}
	x = relu("relu", bn("bn", x))
	return w.head(scope, x)
}

// head is global average pooling and the classifier (Keras' "predictions" Dense layer), logits out.
func (w *writer) head(scope, x string) string {
	x = w.node("GlobalAveragePool", "avg_pool_nchw", []string{x})
	x = w.node("Flatten", "avg_pool", []string{x})
	kernel, d := w.variable(scope + "predictions/kernel")
	bias, _ := w.variable(scope + "predictions/bias")
	if w.err != nil || len(d) != 2 {
		if w.err == nil {
			w.err = fmt.Errorf("onnxexport: predictions/kernel has shape %v", d)
		}
		return x
	}
	return w.node("Gemm", "predictions", []string{x,
		w.initializer("predictions/kernel", []int64{int64(d[0]), int64(d[1])}, kernel),
		w.initializer("predictions/bias", []int64{int64(d[1])}, bias)})
}

// resNet adds resnet.Builder.Done's layers (Keras' names: conv1_conv, conv2_block1_0_conv, ...,
// predictions), in Keras' layout (convolution biases, each stage's stride on its first 1x1
// convolution) or torchvision's (cfg.TorchvisionLayout: no biases, the stride on the 3x3), on NCHW x,
// and returns the logits.
func (w *writer) resNet(x string, cfg models.Config) string {
	scope := "/" + cfg.BackboneScope() + "/"
	blocks, ok := resnet.PresetBlocks(cfg.Preset)
	if !ok {
		w.err = fmt.Errorf("onnxexport: unknown ResNet preset %q", cfg.Preset)
		return x
	}
	tv := cfg.TorchvisionLayout
	eps := resnet.BatchNormEpsilon
	if tv {
		eps = resnet.TorchvisionBatchNormEpsilon
	}
	bn := func(name, in string) string { return w.batchNorm(scope, name, in, eps) }
	relu := func(name, in string) string { return w.node("Relu", name, []string{in}) }
	// conv: 3x3 padded by 1 (at stride 2 too, as the Go model pads first), others unpadded.
	conv := func(name, in string, kernel, stride int) string {
		pad := 0
		if kernel == 3 {
			pad = 1
		}
		return w.conv(scope, name, in, kernel, stride, pad, !tv)
	}
	x = w.node("Pad", "conv1_pad", []string{x, w.constInt64("conv1_pad/pads", 0, 0, 3, 3, 0, 0, 3, 3)})
	x = relu("conv1_relu", bn("conv1_bn", conv("conv1_conv", x, 7, 2)))
	x = w.node("Pad", "pool1_pad", []string{x, w.constInt64("pool1_pad/pads", 0, 0, 1, 1, 0, 0, 1, 1)})
	x = w.node("MaxPool", "pool1_pool", []string{x}, ints("kernel_shape", 3, 3), ints("strides", 2, 2))
	for i, count := range blocks {
		for j := range count {
			name := fmt.Sprintf("conv%d_block%d", i+2, j+1)
			stride := 1
			if j == 0 && i > 0 {
				stride = 2
			}
			shortcut := x
			if j == 0 {
				shortcut = bn(name+"_0_bn", conv(name+"_0_conv", x, 1, stride))
			}
			s1, s2 := stride, 1
			if tv {
				s1, s2 = 1, stride
			}
			y := relu(name+"_1_relu", bn(name+"_1_bn", conv(name+"_1_conv", x, 1, s1)))
			y = relu(name+"_2_relu", bn(name+"_2_bn", conv(name+"_2_conv", y, 3, s2)))
			y = bn(name+"_3_bn", conv(name+"_3_conv", y, 1, 1))
			x = relu(name+"_out", w.node("Add", name+"_add", []string{shortcut, y}))
		}
	}
	return w.head(scope, x)
}
