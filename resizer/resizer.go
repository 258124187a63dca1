// Package resizer implements the learnable image resizer of Talebi & Milanfar, "Learning to Resize
// Images for Computer Vision Tasks" (arXiv:2103.09950), as ported by the keras.io tutorial of the
// same name, on GoMLX; and Resize, a differentiable tf.image.resize that is fast on every backend
// (its four methods within 1e-5 in float32 of references written from TensorFlow's kernels; see
// Resize).
//
// The layer (see New) is, with filters F and the interpolation method of Resize:
//
//	naive      = Resize(x, target)
//	h          = BN(LeakyReLU0.2(Conv1x1_F(LeakyReLU0.2(Conv7x7_F(x)))))
//	bottleneck = Resize(h, target)
//	r          = bottleneck; for each residual block: r = r + BN(Conv3x3(LeakyReLU0.2(BN(Conv3x3(r)))))
//	r          = BN(Conv3x3_F(r)) + bottleneck
//	out        = Conv7x7_C(r) + naive          (C = input channels, 3 for RGB)
//
// With the defaults (16 filters, 1 residual block, RGB) it has 12,163 parameters, 12,035 trainable,
// as the tutorial's Keras model. The residual blocks are chained, as in the tutorial's code
// (x = res_block(bottleneck), then x = res_block(x) for the others). Difference from the Keras code,
// on purpose: the Filters setting is honoured in the residual blocks (the tutorial's res_block
// hard-codes 16); with 16 filters it is identical to Keras.
//
// Variables are named after the Keras layers (learnable_resizer/conv2d/kernel,
// learnable_resizer/batch_normalization/gamma, ...), in Keras' creation order.
package resizer

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/learnresize/learnresize/internal/layers"
)

// Hyperparameter keys read by New (through model.GetParamOr, so they can be set on any enclosing
// scope) and written by Done into the resizer's own scope, so that a checkpoint records the
// configuration it was trained with.
const (
	// ParamTargetHeight is the output height (int), default 150 (the tutorial's TARGET_SIZE).
	ParamTargetHeight = "resizer_target_height"
	// ParamTargetWidth is the output width (int), default 150.
	ParamTargetWidth = "resizer_target_width"
	// ParamFilters is the number of filters of the inner convolutions (int), default 16.
	ParamFilters = "resizer_filters"
	// ParamResBlocks is the number of chained residual blocks (int), default 1.
	ParamResBlocks = "resizer_res_blocks"
	// ParamInterpolation is the interpolation method name (string: bilinear, bicubic, nearest, area),
	// default "bilinear".
	ParamInterpolation = "resizer_interpolation"
	// ParamTrainingInputHeight and ParamTrainingInputWidth record the size of the images the resizer
	// is trained on (the tutorial's INP_SIZE), when the builder is told (Builder.TrainingInput): a
	// loaded Model brings new images to that size first (Model.ResizeImage).
	ParamTrainingInputHeight = "resizer_training_input_height"
	ParamTrainingInputWidth  = "resizer_training_input_width"
)

// ScopeName is the sub-scope New creates for the resizer's variables (the Keras model's name).
const ScopeName = "learnable_resizer"

// Tutorial defaults.
const (
	DefaultTarget     = 150
	DefaultFilters    = 16
	DefaultResBlocks  = 1
	LeakyAlpha        = 0.2  // LeakyReLU slope of the tutorial (GoMLX's default is 0.3).
	BatchNormEpsilon  = 1e-3 // Keras default.
	BatchNormMomentum = 0.99 // Keras default: moving = 0.99*moving + 0.01*batch.
)

// Builder configures a learnable resizer. Create it with New, set options, then call Done.
type Builder struct {
	scope          *model.Scope
	images         *Node
	height, width  int
	filters, block int
	method         Method
	form           Formulation
	trainH, trainW int // TrainingInput (0: not recorded)
	recompute      bool
}

// New starts a learnable resizer on images shaped [batch, height, width, channels] (any height and
// width, values as the model sees them: the tutorial feeds it pixels scaled to [0, 1]). Defaults
// come from the Param* hyperparameters in scope, else the tutorial's values.
func New(scope *model.Scope, images *Node) *Builder {
	b := &Builder{
		scope:   scope,
		images:  images,
		height:  model.GetParamOr(scope, ParamTargetHeight, DefaultTarget),
		width:   model.GetParamOr(scope, ParamTargetWidth, DefaultTarget),
		filters: model.GetParamOr(scope, ParamFilters, DefaultFilters),
		block:   model.GetParamOr(scope, ParamResBlocks, DefaultResBlocks),
		form:    Auto,
	}
	m, err := ParseMethod(model.GetParamOr(scope, ParamInterpolation, Bilinear.String()))
	if err != nil {
		exceptions.Panicf("resizer: hyperparameter %s: %v", ParamInterpolation, err)
	}
	b.method = m
	return b
}

// Target sets the output size.
func (b *Builder) Target(height, width int) *Builder { b.height, b.width = height, width; return b }

// Filters sets the number of filters of the inner convolutions.
func (b *Builder) Filters(n int) *Builder { b.filters = n; return b }

// ResBlocks sets the number of chained residual blocks (0 is allowed).
func (b *Builder) ResBlocks(n int) *Builder { b.block = n; return b }

// Interpolation sets the method of both resizes (the naive one and the bottleneck).
func (b *Builder) Interpolation(m Method) *Builder { b.method = m; return b }

// TrainingInput records the size of the images the model is trained on (the tutorial's INP_SIZE,
// 300x300), for Model.ResizeImage; it does not change the graph.
func (b *Builder) TrainingInput(height, width int) *Builder {
	b.trainH, b.trainW = height, width
	return b
}

// Formulation forces a formulation of the resize op (default Auto; see Formulation).
func (b *Builder) Formulation(f Formulation) *Builder { b.form = f; return b }

// Recompute turns on gradient checkpointing: the layers before the bottleneck resize (at the input
// size) and each residual block are recomputed in the backward pass instead of keeping their
// activations. Same values, gradients equal up to float32 rounding (some are summed in another
// order), less memory: at the tutorial's shapes these are the largest tensors of the model (batch
// 64: ~370 MB per 300x300x16 activation, 830 MB of a 3x3 convolution's taps at 150x150 on the CPU
// backends, which write it as matrix products). It does not change the variables.
func (b *Builder) Recompute(v bool) *Builder { b.recompute = v; return b }

// Config returns the configuration Done will build.
func (b *Builder) Config() Config {
	return Config{TargetHeight: b.height, TargetWidth: b.width, Filters: b.filters, ResBlocks: b.block, Interpolation: b.method}
}

// Done builds the resizer and returns its output, shaped [batch, target height, target width, channels].
// Batch normalisation runs in training mode when the scope's store is training the graph.
func (b *Builder) Done() *Node {
	if err := b.Config().Validate(); err != nil {
		exceptions.Panicf("resizer: %v", err)
	}
	layers.ApplyScope(b.scope, b.images.Graph())
	x := b.images
	if x.Rank() != 4 || x.Shape().Dimensions[3] < 1 {
		exceptions.Panicf("resizer: images must be NHWC with at least one channel, got shape %s", x.Shape())
	}
	channels := x.Shape().Dimensions[3]
	scope := b.scope.In(ScopeName)
	b.Config().writeParams(scope)
	if b.trainH > 0 && b.trainW > 0 {
		scope.SetParam(ParamTrainingInputHeight, b.trainH)
		scope.SetParam(ParamTrainingInputWidth, b.trainW)
	}

	convs, bns := 0, 0
	// inStretch is whether the layers being built are inside a stretch recomputed in the backward
	// pass (Recompute).
	inStretch := false
	conv := func(y *Node, filters, kernel int, bias bool) *Node {
		s := scope.In("%s", kerasName("conv2d", convs))
		convs++
		// A recomputed stretch recomputes its convolutions' taps (the shifted copies of the input
		// that the kernel gradient reads) anyway, and their own recomputation would end the stretch
		// early. The convolutions after the last stretch recompute their own, as without
		// Recompute: at batch 64 on the pure-Go backend the tail's 7x7 taps are 4.2 GB, the 3x3
		// one's before it 0.83 GB.
		return layers.Conv(s, y).Filters(filters).Kernel(kernel).UseBias(bias).Recompute(!inStretch).Done()
	}
	bn := func(y *Node) *Node {
		s := scope.In("%s", kerasName("batch_normalization", bns))
		bns++
		return layers.BatchNorm(s, y).Momentum(BatchNormMomentum).Epsilon(BatchNormEpsilon).Done()
	}
	resize := func(y *Node) *Node { return ResizeWith(y, b.height, b.width, b.method, b.form) }

	// start and end mark a stretch recomputed in the backward pass (Recompute).
	start, end := func(n *Node) *Node { return n }, func(n *Node) *Node { return n }
	if b.recompute {
		start = func(n *Node) *Node { inStretch = true; return n.Checkpoint() }
		end = func(n *Node) *Node { inStretch = false; return n.StopCheckpoint() }
	}
	naive := resize(x)
	h := layers.LeakyReLU(conv(start(x), b.filters, 7, true), LeakyAlpha)
	h = bn(layers.LeakyReLU(conv(h, b.filters, 1, true), LeakyAlpha))
	bottleneck := end(resize(h))
	r := bottleneck
	for range b.block {
		in := start(r)
		y := layers.LeakyReLU(bn(conv(in, b.filters, 3, false)), LeakyAlpha)
		y = bn(conv(y, b.filters, 3, false))
		r = end(Add(in, y))
	}
	r = Add(bn(conv(r, b.filters, 3, false)), bottleneck)
	return Add(conv(r, channels, 7, true), naive)
}

// kerasName numbers layers the way Keras does: conv2d, conv2d_1, conv2d_2, ...
func kerasName(base string, i int) string {
	if i == 0 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, i)
}
