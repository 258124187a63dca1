// Package layers holds the few Keras-compatible layers the learnresize models share: a 2-D
// convolution with Keras' glorot-uniform kernels and variable names, a batch normalisation with
// Keras' semantics and the true gradient through the batch statistics, and LeakyReLU.
//
// Why not GoMLX's own layers: GoMLX v0.28 initialises kernels with He by default (Keras uses
// glorot_uniform), names variables "weights"/"biases", and its graph batch norm (the only one the
// pure-Go backend can run) applies StopGradient to the batch mean and variance, so its input
// gradient is wrong during training (measured ~21% off finite differences). It also debiases its
// moving averages, where Keras uses plain momentum.
package layers

import (
	"hash/fnv"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/support/exceptions"
)

// ConvBuilder configures a Keras Conv2D on NHWC input. Create it with Conv and finish with Done.
type ConvBuilder struct {
	scope           *model.Scope
	x               *Node
	filters, kernel int
	strides         int
	same, bias      bool
	recompute       bool
}

// Conv starts a Keras Conv2D in scope (variables "kernel" [k, k, in, filters] and "bias" [filters]),
// defaults: stride 1, "same" padding, with bias.
func Conv(scope *model.Scope, x *Node) *ConvBuilder {
	return &ConvBuilder{scope: scope, x: x, strides: 1, same: true, bias: true, recompute: true}
}

// Recompute sets whether, in a training graph, a convolution written as matrix products
// (convmatmul.go) recomputes the shifted copies of its input (its taps, or their im2col matrix) in
// the backward pass instead of keeping them, when they are large (default true). Set it false inside a stretch the caller already recomputes (GoMLX's Checkpoint ...
// StopCheckpoint): the convolution's own checkpoint would end the caller's stretch.
func (c *ConvBuilder) Recompute(r bool) *ConvBuilder { c.recompute = r; return c }

// Filters sets the number of output channels (required).
func (c *ConvBuilder) Filters(n int) *ConvBuilder { c.filters = n; return c }

// Kernel sets the square kernel size (required, odd).
func (c *ConvBuilder) Kernel(k int) *ConvBuilder { c.kernel = k; return c }

// Strides sets the stride on both spatial axes (with Valid padding only when above 1).
func (c *ConvBuilder) Strides(s int) *ConvBuilder { c.strides = s; return c }

// Valid selects Keras "valid" padding (none).
func (c *ConvBuilder) Valid() *ConvBuilder { c.same = false; return c }

// UseBias sets whether a bias is added (Keras use_bias).
func (c *ConvBuilder) UseBias(b bool) *ConvBuilder { c.bias = b; return c }

// Done creates the variables (glorot-uniform kernel, zero bias) and returns the convolution.
func (c *ConvBuilder) Done() *Node {
	if c.filters <= 0 || c.kernel <= 0 {
		exceptions.Panicf("layers.Conv in %q: filters (%d) and kernel (%d) must be set and positive", c.scope.Scope(), c.filters, c.kernel)
	}
	if c.kernel%2 == 0 {
		exceptions.Panicf("layers.Conv in %q: kernel size %d is even; only odd sizes are supported (GoMLX's input "+
			"gradient of even-sized convolution kernels is off by one pixel)", c.scope.Scope(), c.kernel)
	}
	if c.x.Rank() != 4 {
		exceptions.Panicf("layers.Conv in %q: input must be NHWC, got %s", c.scope.Scope(), c.x.Shape())
	}
	g := c.x.Graph()
	dtype := ParamDType(c.x.DType())
	inC := c.x.Shape().Dimensions[3]
	kernelVar := c.scope.WithInitializer(GlorotUniform(c.scope, "kernel")).
		VariableWithShape("kernel", shapes.Make(dtype, c.kernel, c.kernel, inC, c.filters))
	if c.same && c.strides != 1 {
		exceptions.Panicf("layers.Conv in %q: \"same\" padding is only implemented for stride 1 (Keras pads "+
			"strided convs unevenly; use explicit padding and Valid)", c.scope.Scope())
	}
	kernel := asDType(kernelVar.NodeValue(g), c.x.DType())
	training := c.scope.IsTraining(g) // no gradient otherwise: the formulation may differ (convmatmul.go)
	var y *Node
	if c.same {
		y = convSame(c.x, kernel, training, c.recompute)
	} else {
		y = convValid(c.x, kernel, c.strides, training, c.recompute)
	}
	if c.bias {
		biasVar := c.scope.WithInitializer(initializer.Zero).VariableWithShape("bias", shapes.Make(dtype, c.filters))
		y = Add(y, Reshape(asDType(biasVar.NodeValue(g), y.DType()), 1, 1, 1, c.filters))
	}
	return y
}

// Dense is a Keras Dense layer on [batch, features] input: "kernel" [features, units] (glorot
// uniform) and "bias" [units] (zeros). No activation.
func Dense(scope *model.Scope, x *Node, units int) *Node {
	if x.Rank() != 2 || units <= 0 {
		exceptions.Panicf("layers.Dense in %q: want [batch, features] input and units > 0, got %s and %d", scope.Scope(), x.Shape(), units)
	}
	g := x.Graph()
	dtype := ParamDType(x.DType())
	kernel := scope.WithInitializer(GlorotUniform(scope, "kernel")).
		VariableWithShape("kernel", shapes.Make(dtype, x.Shape().Dimensions[1], units))
	bias := scope.WithInitializer(initializer.Zero).VariableWithShape("bias", shapes.Make(dtype, units))
	y := Dot(x, asDType(kernel.NodeValue(g), x.DType())).Product()
	return Add(y, Reshape(asDType(bias.NodeValue(g), y.DType()), 1, units))
}

// GlorotUniform is Keras' glorot_uniform initializer (uniform in ±sqrt(6/(fan_in+fan_out)), fans of
// a Dense or convolution kernel) for the variable name in scope.
//
// When the store has a seed (model.ParamInitialSeed != 0), each variable draws from its own random
// stream, seeded by the seed and the variable's full path. So a variable's initial value depends only
// on the seed and its name, not on how many variables were created before it: the tutorial's two
// models (with and without the resizer) get the same initial DenseNet for the same seed, which is the
// tutorial's fairness condition. Without a seed it falls back to the store's random state.
//
// The seed is read when the variable is initialized, not when it is created, so that a store whose
// variables are reset and given another seed (training.Compare's next seed, reusing its compiled
// graphs) initializes them as a new store with that seed would.
func GlorotUniform(scope *model.Scope, name string) model.VariableInitializer {
	if model.GetParamOr(scope, model.ParamInitialSeed, int64(0)) == 0 {
		return initializer.GlorotUniformFn(scope)
	}
	path := model.JoinPath(scope.Scope(), name)
	return func(g *Graph, shape shapes.Shape) *Node {
		seed := model.GetParamOr(scope, model.ParamInitialSeed, int64(0))
		fanIn, fanOut := fans(shape)
		limit := math.Sqrt(6 / float64(max(1, fanIn+fanOut)))
		h := fnv.New64a()
		_, _ = h.Write([]byte(path))
		_, u := RandomUniform(RNGStateFromSeedForGraph(g, seed^int64(h.Sum64())), shape)
		return AddScalar(MulScalar(u, 2*limit), -limit)
	}
}

// fans returns Keras' fan_in and fan_out of a kernel: [in, out] for Dense, [k..., in, out] for convs.
func fans(shape shapes.Shape) (fanIn, fanOut int) {
	d := shape.Dimensions
	if len(d) < 2 {
		return 1, 1
	}
	receptive := 1
	for _, k := range d[:len(d)-2] {
		receptive *= k
	}
	return d[len(d)-2] * receptive, d[len(d)-1] * receptive
}

// BatchNormBuilder configures a Keras BatchNormalization over the last (channel) axis.
type BatchNormBuilder struct {
	scope             *model.Scope
	x                 *Node
	momentum, epsilon float64
}

// BatchNorm starts a Keras BatchNormalization in scope with Keras' defaults (momentum 0.99,
// epsilon 1e-3). Variables: "gamma", "beta" (trainable), "moving_mean", "moving_variance" (not).
func BatchNorm(scope *model.Scope, x *Node) *BatchNormBuilder {
	return &BatchNormBuilder{scope: scope, x: x, momentum: 0.99, epsilon: 1e-3}
}

// Momentum of the moving statistics: moving = momentum*moving + (1-momentum)*batch.
func (b *BatchNormBuilder) Momentum(m float64) *BatchNormBuilder { b.momentum = m; return b }

// Epsilon added to the variance.
func (b *BatchNormBuilder) Epsilon(e float64) *BatchNormBuilder { b.epsilon = e; return b }

// Done returns the normalised x. In training graphs (scope.IsTraining) it normalises with the batch
// mean and biased variance, back-propagates through them, and updates the moving statistics; in
// inference it uses the moving statistics.
func (b *BatchNormBuilder) Done() *Node {
	// Half-precision inputs (mixed precision) are normalised in float32: the statistics need it.
	x := asDType(b.x, ParamDType(b.x.DType()))
	g := x.Graph()
	dtype := x.DType()
	c := x.Shape().Dimensions[x.Rank()-1]
	vshape := shapes.Make(dtype, c)
	gamma := b.scope.WithInitializer(initializer.One).VariableWithShape("gamma", vshape)
	beta := b.scope.WithInitializer(initializer.Zero).VariableWithShape("beta", vshape)
	movingMean := b.scope.WithInitializer(initializer.Zero).VariableWithShape("moving_mean", vshape).SetTrainable(false)
	movingVar := b.scope.WithInitializer(initializer.One).VariableWithShape("moving_variance", vshape).SetTrainable(false)

	// The arithmetic runs on a 3-D view [outer, mid, inner] of x: for NHWC [N, H, W*C], with
	// per-channel values tiled along the inner axis. Two reasons:
	//   - speed: every reduction, in the forward pass and in GoMLX's gradients, is over a leading
	//     axis of a wide array, which ONNX Runtime does 7x faster than a reduction over N, H and W of
	//     NHWC (profiled: the resizer's batch norms at 300x300 spent 160 ms per training step in such
	//     reductions);
	//   - float32 accuracy: the backends add a reduced axis one element after another, so a sum over
	//     all N*H rows at once (19,200 at the tutorial's batch 64 at 300x300) carries an error that
	//     grows with the row count. Here the statistics are sums over N, then over H, then over W,
	//     and the per-channel values are broadcast over H explicitly (a small [1, H, W*C] array) and
	//     over N implicitly, so that the gradients' reductions are split the same way; and the mean
	//     is taken of shifted values (below). On [64, 300, 16, 2] inputs of std 1 and offsets 0, 100
	//     and 1000 (TestBatchNormLargeOffset), with the rows summed at once and no shift, the output's
	//     largest float32 error was 4.5e-6, 2.9e-5 and 1.1e-3 and the input gradient's 7.9e-7 to
	//     1.5e-6; now 5.4e-7, 4.5e-7 and 7.1e-7, and 6.9e-8 to 9.3e-8, as good as a float32
	//     implementation that accumulates in float64 (PyTorch's CPU kernels do).
	dims := x.Shape().Dimensions
	inner, mid := c, 1
	if x.Rank() > 2 {
		inner = dims[x.Rank()-2] * c
		for _, d := range dims[1 : x.Rank()-2] {
			mid *= d
		}
	}
	training := b.scope.IsTraining(g)
	x3 := Reshape(x, dims[0], mid, inner)
	tile := func(v *Node) *Node { // [c] -> [1, mid, inner] in training graphs, [1, 1, inner] otherwise
		t := Reshape(v, 1, 1, c)
		if inner != c {
			t = Reshape(BroadcastToDims(Reshape(v, 1, c), inner/c, c), 1, 1, inner)
		}
		if training && mid > 1 {
			t = BroadcastToDims(t, 1, mid, inner)
		}
		return t
	}
	var centered, variance *Node // x - mean, tiled: computed once, for the variance and the output
	if training {
		// The mean is taken of x minus a per-channel shift close to it (the mean of the first row's
		// pixels; its gradient is stopped, and the result does not depend on it): with a large common
		// offset the subtraction is then nearly exact, and the centred values never pass through a
		// rounded float32 mean (at offset 1000 and std 1, that rounding alone is 3e-5 of the std, and
		// the output was 2.2e-4 off float64 without the shift: TestBatchNormLargeOffset).
		first := Reshape(Slice(x3, AxisRange(0, 1), AxisRange(0, 1)), inner/c, c)
		shift := StopGradient(shortMantissa(ReduceMean(first, 0)))
		shifted := Sub(x3, tile(shift))
		meanShifted := channelMean(shifted, c)
		centered = Sub(shifted, tile(meanShifted))
		mean := Add(shift, meanShifted)
		variance = channelMean(Square(centered), c)
		m := b.momentum
		movingMean.SetNodeValue(Add(MulScalar(movingMean.NodeValue(g), m), MulScalar(StopGradient(mean), 1-m)))
		movingVar.SetNodeValue(Add(MulScalar(movingVar.NodeValue(g), m), MulScalar(StopGradient(variance), 1-m)))
	} else {
		centered = Sub(x3, tile(movingMean.NodeValue(g)))
		variance = movingVar.NodeValue(g)
	}
	// 1/Sqrt rather than Rsqrt: GoMLX's Rsqrt has no gradient.
	inv := Div(gamma.NodeValue(g), Sqrt(AddScalar(variance, b.epsilon)))
	y := Add(Mul(centered, tile(inv)), tile(beta.NodeValue(g)))
	return asDType(Reshape(y, dims...), b.x.DType())
}

// shortMantissa rounds x to its 8 leading significant bits (Veltkamp's splitting: c = x*(2^16+1),
// then c - (c - x)), so that y - x is exact for most y: subtracting such a shift adds no rounding to
// values larger than it (with x's full 24 bits, the batch norm's output on [64, 300, 16, 2] was 7.9e-7
// off float64 at offset 0 against 5.4e-7 without a shift). Backends that simplified the expression
// back to x would only lose that last bit of accuracy.
func shortMantissa(x *Node) *Node {
	c := MulScalar(x, 1<<16+1)
	return Sub(c, Sub(c, x))
}

// channelMean is the per-channel mean, shaped [c], of x3 [outer, mid, inner] whose inner axis holds
// inner/c pixels of c channels: sums over outer, then mid, then the pixels of the inner axis, each
// a reduction over the leading axis.
func channelMean(x3 *Node, c int) *Node {
	d := x3.Shape().Dimensions
	s := ReduceSum(ReduceSum(x3, 0), 0)
	if d[2] != c {
		s = ReduceSum(Reshape(s, d[2]/c, c), 0)
	}
	return MulScalar(s, float64(c)/float64(x3.Shape().Size()))
}

// ParamDType is the dtype of the variables of a layer whose input has dtype: float32 for half
// precision inputs (mixed precision: weights, batch-norm statistics and their updates stay float32,
// the convolutions run in the input's dtype), the input's dtype otherwise.
func ParamDType(input dtypes.DType) dtypes.DType {
	if input.IsHalfPrecision() {
		return dtypes.Float32
	}
	return input
}

func asDType(x *Node, dtype dtypes.DType) *Node {
	if x.DType() == dtype {
		return x
	}
	return ConvertDType(x, dtype)
}

// ReLU is max(x, 0), with the gradient of Keras and PyTorch (1 where x > 0, else 0). Written as x
// times its 0/1 mask, the mask's gradient stopped: GoMLX's Max gradient costs a subtraction, a sign
// and a reduction for the constant side, and ONNX Runtime's Where (a select) was the slowest kernel
// of the training step (activationFactor).
func ReLU(x *Node) *Node { return activationFactor(x, 0) }

// LeakyReLU is max(x, alpha*x) for 0 <= alpha < 1 (Keras' LeakyReLU; the tutorial uses alpha 0.2,
// GoMLX's default slope is 0.3), with the derivative of Keras/TensorFlow and PyTorch: 1 where x > 0,
// alpha elsewhere, at exactly 0 too. Exact zeros are common on photos: a black patch through a
// zero-initialised bias is exactly 0, and with the derivative 1 there (the select on x >= 0 this
// once was) the resizer's first-step bias gradients were 35% off PyTorch's on real photos.
func LeakyReLU(x *Node, alpha float64) *Node { return activationFactor(x, alpha) }

// activationFactor is x times its slope, 1 where x > 0 and alpha elsewhere (0 for ReLU), the
// slope's gradient stopped, so that the gradient with respect to x is the upstream gradient times
// the slope: one multiplication each way. Both products are exact where the slope is 1, and x*alpha
// rounds as alpha*x does; ReLU of a negative x is -0, equal to 0. Unlike a select, it lets a NaN or (for ReLU) a -Inf input through as NaN
// instead of 0: an overflow shows instead of vanishing. The select it replaces, Where(x > 0, x, alpha*x), ran at 0.3 GB/s in ONNX
// Runtime (27% of the profiled training step's kernel time, docs/BENCHMARKS.md).
func activationFactor(x *Node, alpha float64) *Node {
	positive := ConvertDType(GreaterThan(x, ScalarZero(x.Graph(), x.DType())), x.DType())
	slope := positive
	if alpha != 0 {
		slope = Max(positive, Scalar(x.Graph(), x.DType(), alpha))
	}
	return Mul(x, StopGradient(slope))
}
