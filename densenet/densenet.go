// Package densenet implements DenseNet-121/169/201 (Huang et al., "Densely Connected Convolutional
// Networks", arXiv:1608.06993) in GoMLX, laid out exactly as keras.applications.DenseNet121 & co., the
// backbone of the keras.io "Learning to Resize Images" tutorial:
//
//	ZeroPadding2D(3) -> Conv 7x7/2 (64, valid, no bias) -> BN -> ReLU -> ZeroPadding2D(1) -> MaxPool 3x3/2
//	dense block (conv2) -> transition (pool2) -> dense block (conv3) -> transition (pool3)
//	-> dense block (conv4) -> transition (pool4) -> dense block (conv5) -> BN -> ReLU
//	-> GlobalAveragePooling -> Dense(classes)          (include top; or avg/max/no pooling)
//
// A dense-block layer is BN-ReLU-Conv1x1(bottleneck·growth)-BN-ReLU-Conv3x3(growth), concatenated to its
// input on the channel axis; a transition is BN-ReLU-Conv1x1(compression·channels)-AvgPool 2x2/2.
// Batch norm uses epsilon 1.001e-5 and momentum 0.99, kernels are glorot-uniform, convolutions have no
// bias: all as Keras. Scope names are Keras' layer names (densenet121/conv2_block1_1_conv/kernel, ...),
// so checkpoints read like the Keras summary. Parameter counts match Keras (7,039,554 for DenseNet-121
// with 2 classes).
//
// Differences from Keras: the top returns logits (Keras applies softmax in the Dense layer; the
// training loss here applies it, numerically more stable) unless Softmax(true) is set; batch norm in
// training back-propagates through the batch statistics as Keras does (unlike GoMLX's own graph batch
// norm).
package densenet

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

// DefaultPreset is the preset New builds unless told otherwise: the tutorial's DenseNet-121.
const DefaultPreset = "densenet121"

// presets: number of layers in each of the four dense blocks (Keras' DenseNet121/169/201).
var presets = map[string][]int{
	"densenet121": {6, 12, 24, 16},
	"densenet169": {6, 12, 32, 32},
	"densenet201": {6, 12, 48, 32},
}

// PresetBlocks returns the layers per dense block of a preset (a copy), and whether it exists.
func PresetBlocks(name string) ([]int, bool) {
	blocks, ok := presets[strings.ToLower(name)]
	return slices.Clone(blocks), ok
}

// Hyperparameter keys read by New (model.GetParamOr, so they can be set on any enclosing scope).
const (
	// ParamPreset names the preset (string): densenet121 (default), densenet169 or densenet201.
	ParamPreset = "densenet_preset"
	// ParamClasses is the number of output classes of the top (int), default 1000 as Keras.
	ParamClasses = "densenet_classes"
	// ParamRecompute recomputes the dense-block layers' activations in the backward pass instead of
	// keeping them (gradient checkpointing; bool), default false.
	ParamRecompute = "densenet_recompute"
)

// Pooling selects what happens after the last ReLU when the top is not included.
type Pooling int

const (
	// PoolingNone returns the 4-D feature map.
	PoolingNone Pooling = iota
	// PoolingAvg returns the global average of the feature map (Keras pooling="avg").
	PoolingAvg
	// PoolingMax returns the global maximum of the feature map (Keras pooling="max").
	PoolingMax
)

// Keras constants of keras.applications.densenet.
const (
	BatchNormEpsilon  = 1.001e-5
	BatchNormMomentum = 0.99
	InitialFeatures   = 64 // filters of the stem convolution
	MinInputSize      = 32
)

// Builder configures a DenseNet. Create it with New, set options, call Done.
type Builder struct {
	scope       *model.Scope
	images      *Node
	name        string
	blocks      []int
	growth      int
	bottleneck  int
	compression float64
	classes     int
	includeTop  bool
	pooling     Pooling
	softmax     bool
	recompute   bool
	rec         *summary.Recorder
}

// New starts a DenseNet on images [batch, height, width, channels] (NHWC, float, height and width at
// least 32), configured by default as the ParamPreset preset (DenseNet-121) with the top included.
func New(scope *model.Scope, images *Node) *Builder {
	b := &Builder{
		scope: scope, images: images,
		growth: 32, bottleneck: 4, compression: 0.5,
		classes:    model.GetParamOr(scope, ParamClasses, 1000),
		includeTop: true, pooling: PoolingAvg,
		recompute: model.GetParamOr(scope, ParamRecompute, false),
	}
	return b.Preset(model.GetParamOr(scope, ParamPreset, DefaultPreset))
}

// Preset selects densenet121, densenet169 or densenet201 (blocks and scope name).
func (b *Builder) Preset(name string) *Builder {
	blocks, ok := PresetBlocks(name)
	if !ok {
		exceptions.Panicf("densenet: unknown preset %q (want densenet121, densenet169 or densenet201)", name)
	}
	b.name = strings.ToLower(name)
	b.blocks = slices.Clone(blocks)
	return b
}

// Blocks sets the number of layers of each dense block (a custom DenseNet, scope name "densenet"
// unless Name is set).
func (b *Builder) Blocks(blocks ...int) *Builder {
	b.blocks = slices.Clone(blocks)
	if preset, ok := presets[b.name]; ok && !slices.Equal(preset, blocks) {
		b.name = "densenet"
	}
	return b
}

// Growth sets the growth rate (filters added by each dense-block layer), default 32.
func (b *Builder) Growth(k int) *Builder { b.growth = k; return b }

// Bottleneck sets the bottleneck multiplier of the 1x1 convolutions (bn_size), default 4.
func (b *Builder) Bottleneck(n int) *Builder { b.bottleneck = n; return b }

// Compression sets the transitions' channel reduction, default 0.5.
func (b *Builder) Compression(c float64) *Builder { b.compression = c; return b }

// Classes sets the number of outputs of the top's Dense layer.
func (b *Builder) Classes(n int) *Builder { b.classes = n; return b }

// IncludeTop sets whether the classifier (global average pooling + Dense) is added. Default true.
func (b *Builder) IncludeTop(v bool) *Builder { b.includeTop = v; return b }

// Pooling sets the pooling used when the top is not included. Default PoolingAvg.
func (b *Builder) Pooling(p Pooling) *Builder { b.pooling = p; return b }

// Softmax makes the top return probabilities (Keras' classifier_activation="softmax") instead of logits.
func (b *Builder) Softmax(v bool) *Builder { b.softmax = v; return b }

// Recompute turns on GoMLX gradient checkpointing for each dense-block layer: activations inside a
// layer are recomputed in the backward pass instead of kept, trading compute for memory.
func (b *Builder) Recompute(v bool) *Builder { b.recompute = v; return b }

// Name sets the scope name (default: the preset's name, e.g. densenet121).
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
		return fmt.Errorf("input %dx%d is smaller than %dx%d, the least DenseNet can reduce", x.Shape().Dimensions[1], x.Shape().Dimensions[2], MinInputSize, MinInputSize)
	case len(b.blocks) == 0:
		return fmt.Errorf("no dense blocks")
	case b.growth <= 0 || b.bottleneck <= 0:
		return fmt.Errorf("growth (%d) and bottleneck (%d) must be positive", b.growth, b.bottleneck)
	case b.compression <= 0 || b.compression > 1:
		return fmt.Errorf("compression %g must be in (0, 1]", b.compression)
	case b.includeTop && b.classes <= 0:
		return fmt.Errorf("classes %d must be positive", b.classes)
	}
	for _, n := range b.blocks {
		if n <= 0 {
			return fmt.Errorf("dense block sizes %v must be positive", b.blocks)
		}
	}
	return nil
}

// Done builds the network. With the top it returns [batch, classes] logits (probabilities with
// Softmax(true)); without, the pooled [batch, channels] features or the [batch, h, w, channels] map.
func (b *Builder) Done() *Node {
	if err := b.validate(); err != nil {
		exceptions.Panicf("densenet: %v", err)
	}
	layers.ApplyScope(b.scope, b.images.Graph())
	n := &net{Builder: b, scope: b.scope.In("%s", b.name)}
	x := n.stem(b.images)
	for i, count := range b.blocks {
		stage := fmt.Sprintf("conv%d", i+2)
		x = n.denseBlock(x, count, stage)
		if i < len(b.blocks)-1 {
			x = n.transitionBlock(x, fmt.Sprintf("pool%d", i+2))
		}
	}
	x = n.relu("relu", n.bn("bn", x))
	return n.head(x)
}

// net builds one DenseNet: the Builder's settings, the scope of its variables, and the count of
// ZeroPadding2D layers (Keras numbers their names).
type net struct {
	*Builder
	scope    *model.Scope
	zeroPads int
}

// stem is Keras' ZeroPadding2D(3), conv1 (7x7/2 valid, no bias), BN, ReLU, ZeroPadding2D(1),
// MaxPooling2D(3, 2) (torchvision's features.conv0 ... pool0).
func (n *net) stem(x *Node) *Node {
	x = n.pad(x, 3)
	x = n.conv("conv1_conv", x, InitialFeatures, 7, 2, false)
	x = n.relu("conv1_relu", n.bn("conv1_bn", x))
	x = n.pad(x, 1)
	x = layers.MaxPool2D(x, 3, 2)
	n.rec.Add("pool1", "MaxPooling2D", x, nil)
	return x
}

// denseBlock is Keras' dense_block (torchvision's _DenseBlock): count conv blocks, each
// concatenating its growth-rate new features to its input.
func (n *net) denseBlock(x *Node, count int, stage string) *Node {
	for j := range count {
		x = n.convBlock(x, fmt.Sprintf("%s_block%d", stage, j+1))
	}
	return x
}

// convBlock is Keras' conv_block (torchvision's _DenseLayer): BN, ReLU, 1x1 conv to
// bottleneck*growth, BN, ReLU, 3x3 conv to growth, concatenated to the input. With gradient
// checkpointing, the layer's activations are recomputed in the backward pass instead of kept.
func (n *net) convBlock(x *Node, name string) *Node {
	input := x
	if n.recompute {
		input = input.Checkpoint()
	}
	y := n.relu(name+"_0_relu", n.bn(name+"_0_bn", input))
	y = n.conv(name+"_1_conv", y, n.bottleneck*n.growth, 1, 1, true)
	y = n.relu(name+"_1_relu", n.bn(name+"_1_bn", y))
	y = n.conv(name+"_2_conv", y, n.growth, 3, 1, true)
	x = Concatenate([]*Node{input, y}, -1)
	if n.recompute {
		x = x.StopCheckpoint()
	}
	n.rec.Add(name+"_concat", "Concatenate", x, nil)
	return x
}

// transitionBlock is Keras' transition_block (torchvision's _Transition): BN, ReLU, 1x1 conv to
// compression x the channels, 2x2/2 average pooling.
func (n *net) transitionBlock(x *Node, name string) *Node {
	x = n.relu(name+"_relu", n.bn(name+"_bn", x))
	x = n.conv(name+"_conv", x, int(float64(x.Shape().Dimensions[3])*n.compression), 1, 1, true)
	if x.Shape().Dimensions[1] < 2 || x.Shape().Dimensions[2] < 2 {
		exceptions.Panicf("densenet: feature map %v too small for transition %s: use a larger input", x.Shape().Dimensions[1:3], name)
	}
	x = layers.AvgPool2D(x, 2, 2)
	n.rec.Add(name+"_pool", "AveragePooling2D", x, nil)
	return x
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

// bn is a BatchNormalization layer with Keras' DenseNet epsilon and momentum.
func (n *net) bn(name string, x *Node) *Node {
	s := n.scope.In("%s", name)
	y := layers.BatchNorm(s, x).Epsilon(BatchNormEpsilon).Momentum(BatchNormMomentum).Done()
	n.rec.Add(name, "BatchNormalization", y, s)
	return y
}

func (n *net) relu(name string, x *Node) *Node {
	y := layers.ReLU(x)
	n.rec.Add(name, "Activation", y, nil)
	return y
}

// conv is a Conv2D without bias, "same" or "valid" padding.
func (n *net) conv(name string, x *Node, filters, kernel, stride int, same bool) *Node {
	s := n.scope.In("%s", name)
	// With checkpointing the dense layers are recomputed whole; a convolution's own recomputation
	// (layers.ConvBuilder.Recompute) would end that stretch early.
	c := layers.Conv(s, x).Filters(filters).Kernel(kernel).Strides(stride).UseBias(false).Recompute(!n.recompute)
	if !same {
		c = c.Valid()
	}
	y := c.Done()
	n.rec.Add(name, "Conv2D", y, s)
	return y
}

// pad is Keras' ZeroPadding2D(p): p zeros on each side of height and width.
func (n *net) pad(x *Node, p int) *Node {
	y := Pad(x, ScalarZero(x.Graph(), x.DType()), PadAxis{}, PadAxis{Start: p, End: p}, PadAxis{Start: p, End: p}, PadAxis{})
	name := "zero_padding2d"
	if n.zeroPads > 0 {
		name = fmt.Sprintf("zero_padding2d_%d", n.zeroPads)
	}
	n.zeroPads++
	n.rec.Add(name, "ZeroPadding2D", y, nil)
	return y
}
