// Package models builds the two models the keras.io "Learning to Resize Images" tutorial compares:
//
//	with resizer: Rescaling(1/255) -> learnable resizer (INP_SIZE -> TARGET_SIZE) -> DenseNet-121
//	baseline:     Rescaling(1/255) -> plain resize to TARGET_SIZE (same method)  -> DenseNet-121
//
// One Config chooses between them (Config.Resizer), so the notebook, the command line and the tests
// share one model function. With the tutorial's defaults they have 7,051,717 and 7,039,554
// parameters, as the tutorial's table. For the same seed both start from identical DenseNet weights
// (each kernel's initial value depends only on the seed and its name): the tutorial's fairness
// condition.
//
// The models return logits; the training loss applies the softmax (Keras' DenseNet applies it in its
// last layer and its loss takes probabilities: the same function, computed more stably here).
package models

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend" // Summary builds on the pure-Go backend.
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/learnresize/learnresize/densenet"
	"github.com/learnresize/learnresize/internal/layers"
	"github.com/learnresize/learnresize/internal/resources"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/resnet"
	"github.com/learnresize/learnresize/summary"
)

// Config describes one of the tutorial's models.
type Config struct {
	// InputHeight, InputWidth: the images fed to the model (the tutorial's INP_SIZE, 300x300).
	InputHeight, InputWidth int
	// TargetHeight, TargetWidth (the tutorial's TARGET_SIZE, 150x150), Interpolation (bilinear),
	// Filters (16) and ResBlocks (1) are the learnable resizer's configuration (ResizerConfig,
	// resizer.DefaultConfig); the baseline's plain resize uses the target size and interpolation.
	// Fields of the model's own (not an embedded resizer.Config), so that each has one name.
	TargetHeight, TargetWidth int
	Interpolation             resizer.Method
	Filters                   int
	ResBlocks                 int
	// Resizer selects the learnable resizer (true) or the plain resize baseline (false).
	Resizer bool
	// Preset of the backbone: densenet121 (default, the tutorial's), densenet169, densenet201, or
	// resnet50, resnet101, resnet152 (the paper's second backbone, package resnet).
	Preset string
	// Blocks and Growth override the DenseNet preset's dense blocks and growth rate when set (small
	// models for tests and quick runs); the scope name is then "densenet".
	Blocks []int
	Growth int
	// TorchvisionLayout builds a ResNet in torchvision's layout (resnet.Torchvision: no convolution
	// biases, strides on the 3x3 convolutions) instead of Keras', as torchvision's pretrained weights
	// need. DenseNets have one layout.
	TorchvisionLayout bool `json:",omitempty"`
	// Classes of the classifier (2: cat, dog).
	Classes int
	// Recompute turns on gradient checkpointing in the DenseNet's dense blocks and in the learnable
	// resizer (DenseNets only): layers recomputed in the backward pass instead of kept, for less memory.
	// (Saved configurations before 2026-12-02 call it "Checkpoint"; UnmarshalJSON reads both.)
	Recompute bool
	// BFloat16 runs the network in bfloat16 (mixed precision): convolutions, resizes and activations in
	// bfloat16, while weights, batch-norm statistics, logits and the loss stay float32. Worth it on GPUs
	// with bfloat16 units; omitted from JSON when off, so float32 configurations read as before.
	BFloat16 bool `json:",omitempty"`
	// Normalize is the backbone's input normalisation: "" (none: the tutorial, a DenseNet trained from
	// scratch on pixels / 255) or NormalizeImageNet (subtract ImageNet's channel means, divide by its
	// standard deviations, as torchvision's pretrained weights expect). It applies to the backbone's
	// input, after the resizer or the plain resize, which keep working on [0, 1] images.
	Normalize string `json:",omitempty"`
}

// NormalizeImageNet is Config.Normalize for torchvision's ImageNet-pretrained weights.
const NormalizeImageNet = "imagenet"

// ImageNet's channel means and standard deviations (RGB, pixels / 255), torchvision's.
var (
	imageNetMean = [3]float64{0.485, 0.456, 0.406}
	imageNetStd  = [3]float64{0.229, 0.224, 0.225}
)

// TutorialInput is the tutorial's INP_SIZE (300x300).
const TutorialInput = 300

// Tutorial returns the tutorial's model with the learnable resizer.
func Tutorial() Config {
	c := Config{InputHeight: TutorialInput, InputWidth: TutorialInput, Resizer: true, Preset: densenet.DefaultPreset, Classes: 2}
	return c.WithResizer(resizer.DefaultConfig())
}

// Baseline returns c without the learnable resizer (plain resize).
func (c Config) Baseline() Config { c.Resizer = false; return c }

// Name is a short name for files and tables: "resizer" or "baseline".
func (c Config) Name() string {
	if c.Resizer {
		return "resizer"
	}
	return "baseline"
}

// Backbone names the backbone for tables and figures: its preset, or "DenseNet (blocks 2, 2)" for
// custom blocks. It is for display only: folders and records use Name and Preset.
func (c Config) Backbone() string {
	if len(c.Blocks) > 0 {
		blocks := make([]string, len(c.Blocks))
		for i, n := range c.Blocks {
			blocks[i] = strconv.Itoa(n)
		}
		return "DenseNet (blocks " + strings.Join(blocks, ", ") + ")"
	}
	return c.Preset
}

// IsResNet reports whether the backbone is a ResNet (package resnet) rather than a DenseNet.
func (c Config) IsResNet() bool {
	_, ok := resnet.PresetBlocks(c.Preset)
	return ok && len(c.Blocks) == 0
}

// Title is the tutorial table's model name.
func (c Config) Title() string {
	backbone := c.Backbone()
	if c.Resizer {
		return fmt.Sprintf("Learnable resizer + %s", backbone)
	}
	return fmt.Sprintf("%s resize + %s", c.Interpolation, backbone)
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.InputHeight <= 0 || c.InputWidth <= 0:
		return fmt.Errorf("input size %dx%d must be positive", c.InputHeight, c.InputWidth)
	case c.TargetHeight < densenet.MinInputSize || c.TargetWidth < densenet.MinInputSize: // ResNet's is the same 32
		return fmt.Errorf("target size %dx%d is below DenseNet's minimum %dx%d", c.TargetHeight, c.TargetWidth, densenet.MinInputSize, densenet.MinInputSize)
	case c.Classes < 2:
		return fmt.Errorf("classes %d: need at least 2", c.Classes)
	case c.Resizer && (c.Filters <= 0 || c.ResBlocks < 0):
		return fmt.Errorf("resizer filters %d / residual blocks %d invalid", c.Filters, c.ResBlocks)
	case c.Growth < 0:
		return fmt.Errorf("DenseNet growth rate %d must be positive (0: the preset's 32)", c.Growth)
	}
	for _, n := range c.Blocks {
		if n <= 0 {
			return fmt.Errorf("dense blocks %v: each needs at least one layer", c.Blocks)
		}
	}
	if c.Normalize != "" && c.Normalize != NormalizeImageNet {
		return fmt.Errorf("normalisation %q: want none or %q", c.Normalize, NormalizeImageNet)
	}
	_, dense := densenet.PresetBlocks(c.Preset)
	_, res := resnet.PresetBlocks(c.Preset)
	switch {
	case !dense && !res && len(c.Blocks) == 0:
		return fmt.Errorf("unknown backbone preset %q (want densenet121, densenet169, densenet201, resnet50, resnet101 or resnet152)", c.Preset)
	case res && (len(c.Blocks) > 0 || c.Growth > 0):
		return fmt.Errorf("dense blocks and growth rate are DenseNet settings, not %s's", c.Preset)
	case res && c.Recompute:
		return fmt.Errorf("gradient checkpointing is implemented for DenseNets only, not %s", c.Preset)
	case c.TorchvisionLayout && !c.IsResNet():
		return fmt.Errorf("the torchvision layout is a ResNet setting (DenseNets have one layout)")
	}
	return nil
}

// String describes the whole model, e.g.
// "Learnable resizer + densenet121, 300x300 -> 150x150 bilinear".
func (c Config) String() string {
	return fmt.Sprintf("%s, %dx%d -> %dx%d %s", c.Title(), c.InputHeight, c.InputWidth, c.TargetHeight, c.TargetWidth, c.Interpolation)
}

// ResizerConfig is the learnable resizer's part of the configuration.
func (c Config) ResizerConfig() resizer.Config {
	return resizer.Config{TargetHeight: c.TargetHeight, TargetWidth: c.TargetWidth, Filters: c.Filters,
		ResBlocks: c.ResBlocks, Interpolation: c.Interpolation}
}

// WithResizer returns c with the learnable resizer's part set from r.
func (c Config) WithResizer(r resizer.Config) Config {
	c.TargetHeight, c.TargetWidth, c.Filters, c.ResBlocks, c.Interpolation = r.TargetHeight, r.TargetWidth, r.Filters, r.ResBlocks, r.Interpolation
	return c
}

// BackboneScope is the scope name of the backbone's variables.
func (c Config) BackboneScope() string {
	if len(c.Blocks) > 0 {
		return "densenet"
	}
	return c.Preset
}

// Build builds the model on images [batch, height, width, 3] holding raw pixel values in [0, 255]
// (uint8 or float) and returns [batch, classes] logits. Layers are recorded in rec (nil for none):
// the resizer and the backbone as one row each, as Keras' summary shows sub-models.
func Build(scope *model.Scope, images *Node, cfg Config, rec *summary.Recorder) *Node {
	return build(scope, images, cfg, rec, false)
}

// build is Build; with expand the backbone records its own layers instead of one row.
// (One piece: the Keras model's layers in order, rescaling, resize, normalisation, backbone, each
// recorded for the summary as it is built.)
func build(scope *model.Scope, images *Node, cfg Config, rec *summary.Recorder, expand bool) *Node {
	if err := cfg.Validate(); err != nil {
		exceptions.Panicf("models: %v", err)
	}
	if images.Rank() != 4 || images.Shape().Dimensions[3] != 3 {
		exceptions.Panicf("models: images must be [batch, height, width, 3], got %s", images.Shape())
	}
	layers.ApplyScope(scope, images.Graph()) // before the plain resize, which uses it too
	x := images
	if x.DType() != dtypes.Float32 {
		x = ConvertDType(x, dtypes.Float32)
	}
	x = MulScalar(x, 1.0/255)
	rec.Add("rescaling", "Rescaling", x, nil)
	if cfg.BFloat16 {
		x = ConvertDType(x, dtypes.BFloat16)
	}
	if cfg.Resizer {
		x = resizer.New(scope, x).Target(cfg.TargetHeight, cfg.TargetWidth).Filters(cfg.Filters).
			ResBlocks(cfg.ResBlocks).Interpolation(cfg.Interpolation).TrainingInput(cfg.InputHeight, cfg.InputWidth).
			Recompute(cfg.Recompute).Done()
		rec.Add(resizer.ScopeName, "Functional", x, scope.At(resizer.ScopeName))
	} else {
		x = resizer.Resize(x, cfg.TargetHeight, cfg.TargetWidth, cfg.Interpolation)
		rec.Add("resizing", "Resizing", x, nil)
	}
	if cfg.Normalize == NormalizeImageNet {
		x = normalizeImageNet(x)
	}
	var backbone interface {
		Done() *Node
		ScopeName() string
	}
	if cfg.IsResNet() {
		b := resnet.New(scope, x).Preset(cfg.Preset).Classes(cfg.Classes)
		if cfg.TorchvisionLayout {
			b = b.Variant(resnet.Torchvision)
		}
		if expand {
			b = b.Record(rec)
		}
		backbone = b
	} else {
		b := densenet.New(scope, x).Classes(cfg.Classes).Recompute(cfg.Recompute)
		if len(cfg.Blocks) > 0 {
			b = b.Blocks(cfg.Blocks...).Name("densenet")
		} else {
			b = b.Preset(cfg.Preset)
		}
		if cfg.Growth > 0 {
			b = b.Growth(cfg.Growth)
		}
		if expand {
			b = b.Record(rec)
		}
		backbone = b
	}
	logits := toFloat32(backbone.Done())
	if !expand {
		rec.Add(backbone.ScopeName(), "Functional", logits, scope.At("%s", backbone.ScopeName()))
	}
	return logits
}

// LoadPretrainedBackbone reads torchvision's weights for cfg's backbone (.pth or .safetensors: a
// DenseNet's, or a ResNet's in the torchvision layout) into store, classifier excepted: the model
// built with cfg then starts from them, with a fresh classifier for its classes.
func LoadPretrainedBackbone(store *model.Store, cfg Config, path string) error {
	if cfg.IsResNet() {
		if !cfg.TorchvisionLayout {
			return fmt.Errorf("torchvision's %s weights need the torchvision layout (TorchvisionLayout; the command sets it with -pretrained)", cfg.Preset)
		}
		return resnet.LoadTorchvisionBackbone(store, cfg.BackboneScope(), path)
	}
	return densenet.LoadTorchvisionBackbone(store, cfg.BackboneScope(), path)
}

// normalizeImageNet maps NHWC images in [0, 1] to (x - mean) / std per RGB channel.
// ImageNetStatistics are the channel means and standard deviations NormalizeImageNet uses (RGB,
// for pixels in [0, 1]), for code that must normalise as the model does (onnxexport).
func ImageNetStatistics() (mean, std [3]float64) { return imageNetMean, imageNetStd }

func normalizeImageNet(x *Node) *Node {
	g := x.Graph()
	mean := ConvertDType(Const(g, []float32{float32(imageNetMean[0]), float32(imageNetMean[1]), float32(imageNetMean[2])}), x.DType())
	inv := ConvertDType(Const(g, []float32{float32(1 / imageNetStd[0]), float32(1 / imageNetStd[1]), float32(1 / imageNetStd[2])}), x.DType())
	return Mul(Sub(x, Reshape(mean, 1, 1, 1, 3)), Reshape(inv, 1, 1, 1, 3))
}

func toFloat32(x *Node) *Node {
	if x.DType() == dtypes.Float32 {
		return x
	}
	return ConvertDType(x, dtypes.Float32)
}

// ModelFn returns the model as a function for GoMLX's train.Trainer and model.Exec.
func ModelFn(cfg Config) func(scope *model.Scope, images *Node) *Node {
	return func(scope *model.Scope, images *Node) *Node { return Build(scope, images, cfg, nil) }
}

// CheckMemory refuses, with a one-line error, a batch whose float32 input tensor alone exceeds the
// memory this machine has available: the model needs many times that, so such a run could only end
// in an out-of-memory crash (once, -inp 100000 did, with a 199-line stack dump). It passes where the
// available memory is unknown.
func CheckMemory(cfg Config, batch int) error {
	need := uint64(batch) * uint64(cfg.InputHeight) * uint64(cfg.InputWidth) * 3 * 4
	if mem, ok := resources.AvailableMemory(); ok && need > mem {
		return fmt.Errorf("a batch of %d images at %dx%d is %s as float32, and this machine has %s available: choose a smaller -inp or -batch",
			batch, cfg.InputHeight, cfg.InputWidth, resources.Size(need), resources.Size(mem))
	}
	return nil
}

// Summary builds (compiles, without running or initialising) the model for a [1, input, input, 3]
// uint8 batch and returns its Keras-style summary. With expand, the backbone's layers are listed one
// by one instead of as a single row.
//
// The summary is the same on every backend, so it is always built on the pure-Go backend, whose
// compilation of DenseNet-121 is immediate; XLA's took 13-28 s on an H200.
func Summary(cfg Config, expand bool) (s summary.Summary, err error) {
	if err := cfg.Validate(); err != nil {
		return s, err
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		return s, fmt.Errorf("summary: the pure-Go backend cannot start: %w", err)
	}
	defer b.Finalize()
	store := model.NewStore()
	rec := &summary.Recorder{}
	exec, err := model.NewExec(b, store, func(scope *model.Scope, x *Node) *Node {
		return build(scope, x, cfg, rec, expand)
	})
	if err != nil {
		return s, err
	}
	defer exec.Finalize()
	if _, err := exec.Compile(shapes.Make(dtypes.Uint8, 1, cfg.InputHeight, cfg.InputWidth, 3)); err != nil {
		return s, err
	}
	return summary.Build(cfg.Title(), rec, store, "/"), nil
}

// UnmarshalJSON reads a saved configuration, those written before Recompute had its name too
// (the field was "Checkpoint", which read as the training checkpoints': 2026-11 runs and
// docs/gpu-runs hold it).
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config // without this method: the default decoding
	v := struct {
		*plain
		Checkpoint *bool
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Checkpoint != nil && *v.Checkpoint {
		c.Recompute = true
	}
	return nil
}
