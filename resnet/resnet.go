// Package resnet implements ResNet-50/101/152 (He et al., "Deep Residual Learning for Image
// Recognition", arXiv:1512.03385) in GoMLX, the second backbone of the "Learning to Resize Images"
// paper, laid out by default exactly as keras.applications.ResNet50 & co. (Keras' resnet.py, stack1
// of block1):
//
//	conv1_pad ZeroPadding2D(3) -> conv1_conv 7x7/2 (64, valid) -> conv1_bn -> conv1_relu
//	-> pool1_pad ZeroPadding2D(1) -> pool1_pool MaxPool 3x3/2
//	-> conv2 (3 blocks, stride 1) -> conv3 (4 blocks, stride 2) -> conv4 (6, 2) -> conv5 (3, 2)
//	-> avg_pool GlobalAveragePooling -> predictions Dense(classes)   (include top; or avg/max/no pooling)
//
// A block (bottleneck) of stage convN with f filters computes
//
//	y = BN(Conv1x1(4f)(ReLU(BN(Conv3x3(f)(ReLU(BN(Conv1x1(f)(x))))))))
//	out = ReLU(shortcut(x) + y)
//
// where the shortcut is the identity, except in the first block of each stage, where it is a
// projection Conv1x1(4f) + BN (scope names convN_blockM_0_conv, _0_bn; the others _1_conv ... _3_bn,
// _add, _out). The stage's stride is on the first 1x1 convolution and on the projection. The
// stages have f = 64, 128, 256 and 512 filters (Filters sets the first, the others double). Every
// convolution has a bias (Keras' use_bias=True, although each is followed by a batch norm), batch
// norms use epsilon 1.001e-5 and momentum 0.99, kernels are glorot-uniform: all as Keras. Scope names
// are Keras' layer names (resnet50/conv2_block1_1_conv/kernel, ...), and the parameter counts match
// Keras' (25,636,712 for ResNet-50 with 1000 classes, of which 53,120 are the batch norms' moving
// statistics).
//
// Variant(Torchvision) builds torchvision's ResNet instead (known as ResNet v1.5), whose pretrained
// weights LoadTorchvision reads: no convolution biases, the stage's stride on the 3x3 convolution
// (padded by 1 on each side, as PyTorch's padding=1) instead of the first 1x1, batch-norm epsilon 1e-5
// (25,557,032 trainable parameters for ResNet-50, torchvision's count). Its stem computes what Keras'
// computes (without the bias): torchvision pads the 7x7/2 convolution by 3 (conv1_pad here) and its 3x3/2 max pooling
// by 1 with -inf, where Keras pads zeros before pooling (pool1_pad). The pooling's input comes out of a
// ReLU, so it is >= 0, and every 3x3 window holds at least one input pixel (the padding is 1 wide):
// a window's maximum is the same with either padding. So is the gradient below the ReLU: a zero
// of the padding can only take the gradient from an input pixel when the window's maximum is 0, and
// then that pixel is a ReLU output of 0, through which no gradient flows back either way. The scope
// names stay Keras' in both variants.
//
// Difference from Keras: the top returns logits (Keras applies softmax in the Dense layer; the
// training loss here applies it, numerically more stable) unless Softmax(true) is set. Batch norm in
// training back-propagates through the batch statistics, as Keras' and PyTorch's do (internal/layers;
// GoMLX's own does not).
package resnet

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/learnresize/learnresize/internal/layers"
	"github.com/learnresize/learnresize/summary"
)

// DefaultPreset is the preset New builds unless told otherwise: the paper's ResNet-50.
const DefaultPreset = "resnet50"

// presets: number of blocks in each of the four stages (Keras' ResNet50/101/152).
var presets = map[string][]int{
	"resnet50":  {3, 4, 6, 3},
	"resnet101": {3, 4, 23, 3},
	"resnet152": {3, 8, 36, 3},
}

// PresetBlocks returns the blocks per stage of a preset (a copy), and whether it exists.
func PresetBlocks(name string) ([]int, bool) {
	blocks, ok := presets[strings.ToLower(name)]
	return slices.Clone(blocks), ok
}

// Hyperparameter keys read by New (model.GetParamOr, so they can be set on any enclosing scope).
const (
	// ParamPreset names the preset (string): resnet50 (default), resnet101 or resnet152.
	ParamPreset = "resnet_preset"
	// ParamClasses is the number of output classes of the top (int), default 1000 as Keras.
	ParamClasses = "resnet_classes"
	// ParamVariant is the layout (a Variant, or its name: "keras", the default, or "torchvision").
	ParamVariant = "resnet_variant"
)

// Variant selects whose ResNet is built: Keras' (the default) or torchvision's.
type Variant int

const (
	// Keras is keras.applications.ResNet50 & co.: convolutions with biases, the stride on each
	// stage's first 1x1 convolution, batch-norm epsilon 1.001e-5.
	Keras Variant = iota
	// Torchvision is torchvision.models.resnet50 & co. (ResNet v1.5): no convolution biases, the
	// stride on the 3x3 convolution, batch-norm epsilon 1e-5. LoadTorchvision reads its weights.
	Torchvision
)

// String is the variant's name as ParamVariant spells it.
func (v Variant) String() string {
	switch v {
	case Keras:
		return "keras"
	case Torchvision:
		return "torchvision"
	}
	return fmt.Sprintf("Variant(%d)", int(v))
}

// ParseVariant reads "keras" or "torchvision" (any case).
func ParseVariant(s string) (Variant, error) {
	switch strings.ToLower(s) {
	case "keras":
		return Keras, nil
	case "torchvision":
		return Torchvision, nil
	}
	return Keras, fmt.Errorf("unknown variant %q (want keras or torchvision)", s)
}

// Pooling selects what happens after the last block when the top is not included.
type Pooling int

const (
	// PoolingNone returns the 4-D feature map.
	PoolingNone Pooling = iota
	// PoolingAvg returns the global average of the feature map (Keras pooling="avg").
	PoolingAvg
	// PoolingMax returns the global maximum of the feature map (Keras pooling="max").
	PoolingMax
)

// Constants of keras.applications.resnet and torchvision.models.resnet.
const (
	BatchNormEpsilon            = 1.001e-5 // Keras' ResNet
	TorchvisionBatchNormEpsilon = 1e-5     // PyTorch's BatchNorm2d default, torchvision's ResNet
	// BatchNormMomentum is Keras' default (moving = 0.99 moving + 0.01 batch), used by both variants:
	// it only matters in training, and PyTorch's momentum 0.1 would be 0.9 in these terms.
	BatchNormMomentum  = 0.99
	DefaultStemFilters = 64 // filters of the 7x7 stem convolution
	DefaultFilters     = 64 // filters of the first stage's bottlenecks (the stages double them)
	Expansion          = 4  // a block outputs Expansion x its filters
	MinInputSize       = 32 // Keras' minimum input size for ResNets
)

// Builder configures a ResNet. Create it with New, set options, call Done.
type Builder struct {
	scope       *model.Scope
	images      *Node
	name        string
	blocks      []int
	filters     int
	stemFilters int
	variant     Variant
	classes     int
	includeTop  bool
	pooling     Pooling
	softmax     bool
	rec         *summary.Recorder
}

// New starts a ResNet on images [batch, height, width, channels] (NHWC, float, height and width at
// least 32), configured by default as the ParamPreset preset (ResNet-50) in the ParamVariant layout
// (Keras') with the top included.
func New(scope *model.Scope, images *Node) *Builder {
	b := &Builder{
		scope: scope, images: images,
		filters: DefaultFilters, stemFilters: DefaultStemFilters, variant: variantParam(scope),
		classes:    model.GetParamOr(scope, ParamClasses, 1000),
		includeTop: true, pooling: PoolingAvg,
	}
	return b.Preset(model.GetParamOr(scope, ParamPreset, DefaultPreset))
}

// variantParam reads ParamVariant: a Variant, or its name.
func variantParam(scope *model.Scope) Variant {
	value, _ := scope.GetParam(ParamVariant)
	switch v := value.(type) {
	case nil:
		return Keras
	case Variant:
		return v
	case string:
		parsed, err := ParseVariant(v)
		if err != nil {
			exceptions.Panicf("resnet: %s: %v", ParamVariant, err)
		}
		return parsed
	}
	exceptions.Panicf("resnet: %s is a %T, want a resnet.Variant or its name", ParamVariant, value)
	return Keras
}

// Preset selects resnet50, resnet101 or resnet152 (blocks and scope name; "resnet" if Filters or
// StemFilters were set to other than the defaults).
func (b *Builder) Preset(name string) *Builder {
	blocks, ok := PresetBlocks(name)
	if !ok {
		exceptions.Panicf("resnet: unknown preset %q (want resnet50, resnet101 or resnet152)", name)
	}
	b.name = strings.ToLower(name)
	b.blocks = blocks
	b.custom()
	return b
}

// custom renames a preset-named network "resnet" once it no longer is the preset.
func (b *Builder) custom() {
	if preset, ok := presets[b.name]; ok &&
		(!slices.Equal(preset, b.blocks) || b.filters != DefaultFilters || b.stemFilters != DefaultStemFilters) {
		b.name = "resnet"
	}
}

// Blocks sets the number of blocks of each stage (a custom ResNet, scope name "resnet" unless Name
// is set). Stage i (named conv{i+2}) has Filters·2^i filters and, but for the first, stride 2.
func (b *Builder) Blocks(blocks ...int) *Builder {
	b.blocks = slices.Clone(blocks)
	b.custom()
	return b
}

// Filters sets the filters of the first stage's blocks (default 64; the next stages double them,
// and each block outputs 4x its filters). Small values make small networks for tests.
func (b *Builder) Filters(base int) *Builder { b.filters = base; b.custom(); return b }

// StemFilters sets the filters of the 7x7 stem convolution (default 64).
func (b *Builder) StemFilters(n int) *Builder { b.stemFilters = n; b.custom(); return b }

// Variant selects Keras' layout (default) or torchvision's (see the package documentation).
func (b *Builder) Variant(v Variant) *Builder { b.variant = v; return b }

// Classes sets the number of outputs of the top's Dense layer.
func (b *Builder) Classes(n int) *Builder { b.classes = n; return b }

// IncludeTop sets whether the classifier (global average pooling + Dense) is added. Default true.
func (b *Builder) IncludeTop(v bool) *Builder { b.includeTop = v; return b }

// Pooling sets the pooling used when the top is not included. Default PoolingAvg.
func (b *Builder) Pooling(p Pooling) *Builder { b.pooling = p; return b }

// Softmax makes the top return probabilities (Keras' classifier_activation="softmax") instead of logits.
func (b *Builder) Softmax(v bool) *Builder { b.softmax = v; return b }

// Name sets the scope name (default: the preset's name, e.g. resnet50).
func (b *Builder) Name(name string) *Builder { b.name = name; return b }

// Record makes Done record its layers in rec (for a Keras-style summary).
func (b *Builder) Record(rec *summary.Recorder) *Builder { b.rec = rec; return b }

// ScopeName is the sub-scope Done creates for the network's variables.
func (b *Builder) ScopeName() string { return b.name }

func (b *Builder) validate() error {
	x := b.images
	switch {
	case x.Rank() != 4:
		return fmt.Errorf("images must be NHWC, got shape %s", x.Shape())
	case !x.DType().IsFloat():
		return fmt.Errorf("images must be float, got %s", x.DType())
	case x.Shape().Dimensions[1] < MinInputSize || x.Shape().Dimensions[2] < MinInputSize:
		return fmt.Errorf("input %dx%d is smaller than %dx%d, Keras' minimum for ResNets", x.Shape().Dimensions[1], x.Shape().Dimensions[2], MinInputSize, MinInputSize)
	case len(b.blocks) == 0:
		return fmt.Errorf("no stages")
	case b.filters <= 0 || b.stemFilters <= 0:
		return fmt.Errorf("filters (%d) and stem filters (%d) must be positive", b.filters, b.stemFilters)
	case b.variant != Keras && b.variant != Torchvision:
		return fmt.Errorf("unknown %s", b.variant)
	case b.includeTop && b.classes <= 0:
		return fmt.Errorf("classes %d must be positive", b.classes)
	case b.name == "":
		return fmt.Errorf("empty scope name")
	}
	for _, n := range b.blocks {
		if n <= 0 {
			return fmt.Errorf("stage sizes %v must be positive", b.blocks)
		}
	}
	return nil
}

// Done builds the network. With the top it returns [batch, classes] logits (probabilities with
// Softmax(true)); without, the pooled [batch, channels] features or the [batch, h, w, channels] map
// (channels = 4·Filters·2^(stages-1): 2048 for the presets).
func (b *Builder) Done() *Node {
	if err := b.validate(); err != nil {
		exceptions.Panicf("resnet: %v", err)
	}
	layers.ApplyScope(b.scope, b.images.Graph())
	n := &net{Builder: b, scope: b.scope.In("%s", b.name)}
	x := n.stem(b.images)
	for i, count := range b.blocks {
		stride := 2
		if i == 0 {
			stride = 1 // the stem's max pooling has just halved the map
		}
		x = n.stack(x, b.filters<<i, count, stride, fmt.Sprintf("conv%d", i+2))
	}
	return n.head(x)
}

// net builds one ResNet: the Builder's settings and the scope of its variables.
type net struct {
	*Builder
	scope *model.Scope
}

// stem is Keras' conv1_pad, conv1_conv (7x7/2 valid), conv1_bn, conv1_relu, pool1_pad,
// pool1_pool (torchvision's conv1 with padding 3, bn1, relu, maxpool with padding 1).
func (n *net) stem(x *Node) *Node {
	x = n.pad("conv1_pad", x, 3)
	x = n.conv("conv1_conv", x, n.stemFilters, 7, 2)
	x = n.relu("conv1_relu", n.bn("conv1_bn", x))
	x = n.pad("pool1_pad", x, 1)
	x = layers.MaxPool2D(x, 3, 2)
	n.rec.Add("pool1_pool", "MaxPooling2D", x, nil)
	return x
}

// stack is Keras' stack1 (torchvision's _make_layer): count blocks of filters, the first with the
// stride and the projection shortcut.
func (n *net) stack(x *Node, filters, count, stride int, stage string) *Node {
	for j := range count {
		s := 1
		if j == 0 {
			s = stride
		}
		x = n.block(x, filters, s, j == 0, fmt.Sprintf("%s_block%d", stage, j+1))
	}
	return x
}

// block is Keras' block1 (torchvision's Bottleneck). The first block of every stage projects its
// shortcut, as Keras' always does; torchvision projects where the stride or the channels change,
// which is every first block at its standard widths (the stem's 64 channels into 256).
func (n *net) block(x *Node, filters, stride int, project bool, name string) *Node {
	shortcut := x
	if project {
		shortcut = n.bn(name+"_0_bn", n.conv(name+"_0_conv", x, Expansion*filters, 1, stride))
	}
	stride1, stride2 := stride, 1 // Keras (v1): the first 1x1 convolution strides
	if n.variant == Torchvision {
		stride1, stride2 = 1, stride // torchvision (v1.5): the 3x3 convolution strides
	}
	y := n.relu(name+"_1_relu", n.bn(name+"_1_bn", n.conv(name+"_1_conv", x, filters, 1, stride1)))
	y = n.relu(name+"_2_relu", n.bn(name+"_2_bn", n.conv(name+"_2_conv", y, filters, 3, stride2)))
	y = n.bn(name+"_3_bn", n.conv(name+"_3_conv", y, Expansion*filters, 1, 1))
	y = Add(shortcut, y)
	n.rec.Add(name+"_add", "Add", y, nil)
	return n.relu(name+"_out", y)
}

// head is global pooling and, with the top, the classifier (Keras' "predictions" Dense layer).
func (n *net) head(x *Node) *Node {
	if !n.includeTop {
		switch n.pooling {
		case PoolingAvg:
			x = ReduceMean(x, 1, 2)
			n.rec.Add("avg_pool", "GlobalAveragePooling2D", x, nil)
		case PoolingMax:
			x = ReduceMax(x, 1, 2)
			n.rec.Add("max_pool", "GlobalMaxPooling2D", x, nil)
		}
		return x
	}
	x = ReduceMean(x, 1, 2)
	n.rec.Add("avg_pool", "GlobalAveragePooling2D", x, nil)
	top := n.scope.In("predictions")
	x = layers.Dense(top, x, n.classes)
	if n.softmax {
		x = Softmax(x, -1)
	}
	n.rec.Add("predictions", "Dense", x, top)
	return x
}

// bn is a BatchNormalization layer with the variant's epsilon.
func (n *net) bn(name string, x *Node) *Node {
	eps := BatchNormEpsilon
	if n.variant == Torchvision {
		eps = TorchvisionBatchNormEpsilon
	}
	s := n.scope.In("%s", name)
	y := layers.BatchNorm(s, x).Epsilon(eps).Momentum(BatchNormMomentum).Done()
	n.rec.Add(name, "BatchNormalization", y, s)
	return y
}

func (n *net) relu(name string, x *Node) *Node {
	y := layers.ReLU(x)
	n.rec.Add(name, "Activation", y, nil)
	return y
}

// conv is a Conv2D with a bias in the Keras variant, none in torchvision's. 1x1 convolutions are
// unpadded; 3x3 ones are padded by 1 on each side ("same" at stride 1; PyTorch's padding=1 at
// stride 2, which Keras' ResNet never strides); the 7x7 stem convolution is unpadded (conv1_pad
// pads it).
//
// A strided 1x1 convolution reads every stride-th pixel of every stride-th row: it is computed
// as exactly that, a strided slice followed by a 1x1 convolution. internal/layers computes strided
// convolutions on every backend but XLA as stride-1 convolutions over stride² times the channels
// (space to depth), which for a 1x1 kernel at stride 2 is four times the work, for the same values.
func (n *net) conv(name string, x *Node, filters, kernel, stride int) *Node {
	s := n.scope.In("%s", name)
	if kernel == 1 && stride > 1 {
		h, w := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
		x = layers.SliceAxisStrided(x, 1, 0, (h-1)/stride+1, stride)
		x = layers.SliceAxisStrided(x, 2, 0, (w-1)/stride+1, stride)
		stride = 1
	}
	if kernel == 3 && stride > 1 {
		x = zeroPad(x, 1)
	}
	c := layers.Conv(s, x).Filters(filters).Kernel(kernel).Strides(stride).UseBias(n.variant == Keras)
	if kernel != 3 || stride > 1 {
		c = c.Valid()
	}
	y := c.Done()
	n.rec.Add(name, "Conv2D", y, s)
	return y
}

// pad is Keras' ZeroPadding2D(p) layer (conv1_pad, pool1_pad).
func (n *net) pad(name string, x *Node, p int) *Node {
	y := zeroPad(x, p)
	n.rec.Add(name, "ZeroPadding2D", y, nil)
	return y
}

// zeroPad puts p zeros on each side of the height and width of NHWC x.
func zeroPad(x *Node, p int) *Node {
	return Pad(x, ScalarZero(x.Graph(), x.DType()), PadAxis{}, PadAxis{Start: p, End: p}, PadAxis{Start: p, End: p}, PadAxis{})
}
