package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gomlx/compute"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// configFlags binds the training configuration to flags (defaults: the tutorial's).
type configFlags struct {
	cfg           training.Config
	interpolation string
	inp, target   string
	blocks        string
	baseline      bool
	small         bool // -small: training.Small() instead of the tutorial's settings, before other flags
	presetSet     bool // -backbone (-preset) was given (set by resolve's caller from the parsed flags)
	blocksSet     bool // -blocks was given (not only -small's blocks)
	growthSet     bool // -growth was given
	normalize     string
}

// flagGroup selects which configuration flags a command shows: each command offers only the flags
// that change what it does (the others keep the tutorial's values).
type flagGroup int

const (
	modelFlags    flagGroup = 1 << iota // sizes, resizer and backbone settings: what the model is
	computeFlags                        // gradient checkpointing, precision, normalisation: how it computes (not in its summary)
	baselineFlag                        // -baseline: the plain-resize model
	batchFlag                           // -batch
	trainingFlags                       // epochs, learning rate, label smoothing, shuffle buffer
	splitFlags                          // -seed and the splits
)

func addConfigFlags(fs *flag.FlagSet, groups flagGroup) *configFlags {
	c := &configFlags{cfg: training.Default()}
	m := &c.cfg.Model
	if groups&modelFlags != 0 {
		fs.BoolVar(&c.small, "small", false, "start from the small configuration (64 -> 32, a tiny DenseNet, 320/160 images, 2 epochs: "+
			"seconds on a CPU) instead of the tutorial's; other flags override it")
		fs.StringVar(&c.inp, "inp", "300", "input size INP_SIZE: N or HxW")
		fs.StringVar(&c.target, "target", "150", "target size TARGET_SIZE: N or HxW")
		fs.StringVar(&c.interpolation, "interpolation", "bilinear", "resize method: bilinear, bicubic, nearest, area")
		fs.IntVar(&m.Filters, "filters", m.Filters, "learnable resizer filters")
		fs.IntVar(&m.ResBlocks, "res-blocks", m.ResBlocks, "learnable resizer residual blocks")
		fs.StringVar(&m.Preset, "backbone", m.Preset, "backbone: densenet121, densenet169, densenet201, resnet50, resnet101, resnet152")
		fs.StringVar(&m.Preset, "preset", m.Preset, "the same as -backbone (its older name)")
		fs.StringVar(&c.blocks, "blocks", "", "custom dense blocks instead of the preset, e.g. 2,2 (small models)")
		fs.IntVar(&m.Growth, "growth", 0, "DenseNet growth rate (0: 32)")
	} else {
		c.inp, c.target, c.interpolation = "300", "150", "bilinear"
	}
	if groups&computeFlags != 0 {
		fs.BoolVar(&m.Recompute, "recompute", false, "recompute the DenseNet's and the resizer's activations in the backward pass "+
			"(gradient checkpointing: at batch 64 on ONNX Runtime 13 GB instead of 18, 5-15% more time; train and compare choose it "+
			"themselves when the step does not fit without)")
		fs.BoolVar(&m.Recompute, "grad-checkpoint", false, "the same as -recompute (its older name)")
		fs.BoolVar(&c.cfg.Lean, "lean", false, "train on ONNX Runtime without buffer sharing (with -recompute: at batch 64 5.8 GB "+
			"instead of 13-18, about twice the time; train and compare choose it themselves when nothing faster fits)")
		fs.BoolVar(&m.BFloat16, "bf16", false, "mixed precision: compute in bfloat16, weights and loss in float32")
		fs.StringVar(&c.normalize, "normalize", "", "the backbone's input normalisation: none, or imagenet (torchvision's "+
			"pretrained weights expect it; the default with -pretrained)")
	}
	if groups&baselineFlag != 0 {
		fs.BoolVar(&c.baseline, "baseline", false, "use the plain-resize model instead of the learnable resizer")
	}
	if groups&batchFlag != 0 {
		fs.IntVar(&c.cfg.BatchSize, "batch", c.cfg.BatchSize, "batch size")
	}
	if groups&trainingFlags != 0 {
		fs.IntVar(&c.cfg.Epochs, "epochs", c.cfg.Epochs, "epochs")
		fs.Float64Var(&c.cfg.LearningRate, "lr", c.cfg.LearningRate, "SGD learning rate")
		fs.Float64Var(&c.cfg.LabelSmoothing, "label-smoothing", c.cfg.LabelSmoothing, "label smoothing")
		fs.IntVar(&c.cfg.ShuffleBuffer, "shuffle-buffer", 0, "shuffle buffer (0: batch*100)")
		fs.StringVar(&c.cfg.Pretrained, "pretrained", "", "start new runs from torchvision's ImageNet weights for the -backbone "+
			"(a DenseNet's or a ResNet's .pth or .safetensors file), classifier excepted")
		fs.IntVar(&c.cfg.FreezeBackboneEpochs, "freeze-backbone", 0, "with -pretrained: keep the backbone's weights fixed for this many first epochs")
	}
	if groups&splitFlags != 0 {
		fs.Int64Var(&c.cfg.Seed, "seed", c.cfg.Seed, "random seed (initial weights and data order)")
		fs.StringVar(&c.cfg.TrainSplit, "train-split", c.cfg.TrainSplit, "training split (TFDS syntax)")
		fs.StringVar(&c.cfg.ValSplit, "val-split", c.cfg.ValSplit, "validation split (TFDS syntax)")
	}
	return c
}

// resolve finishes the configuration after parsing and validates it.
// (One piece: one check per flag in flag order, each returning its own usage error.)
func (c *configFlags) resolve() (training.Config, error) {
	cfg := c.cfg
	m := &cfg.Model
	var err error
	if m.InputHeight, m.InputWidth, err = parseSize(c.inp); err != nil {
		return cfg, usagef("-inp: %v", err)
	}
	if m.TargetHeight, m.TargetWidth, err = parseSize(c.target); err != nil {
		return cfg, usagef("-target: %v", err)
	}
	if m.Interpolation, err = resizer.ParseMethod(c.interpolation); err != nil {
		return cfg, usagef("-interpolation: %v", err)
	}
	if c.presetSet && !c.blocksSet { // -small -backbone X: the chosen backbone, not -small's tiny DenseNet
		c.blocks = ""
		if !c.growthSet {
			m.Growth = 0
		}
	}
	if c.blocks != "" {
		if c.presetSet {
			return cfg, usagef("-backbone (-preset) and -blocks both choose the network's blocks: give one of them")
		}
		for _, part := range strings.Split(c.blocks, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil || n <= 0 {
				return cfg, usagef("-blocks %q: want positive integers separated by commas", c.blocks)
			}
			m.Blocks = append(m.Blocks, n)
		}
		m.Preset = "" // the blocks replace the preset: records (comparison.json, checkpoints) must not name one
	}
	m.Resizer = !c.baseline
	if cfg.Pretrained != "" && m.IsResNet() {
		m.TorchvisionLayout = true // the weights are torchvision's: its layout (resnet.Torchvision)
	}
	switch c.normalize {
	case "", "none":
		if c.normalize == "" && cfg.Pretrained != "" {
			m.Normalize = models.NormalizeImageNet // torchvision's weights were trained on normalised images
		}
	case models.NormalizeImageNet:
		m.Normalize = models.NormalizeImageNet
	default:
		return cfg, usagef("-normalize %q: want none or imagenet", c.normalize)
	}
	if cfg.Pretrained != "" {
		if _, err := os.Stat(cfg.Pretrained); err != nil {
			return cfg, usagef("-pretrained: %v", err)
		}
	}
	if _, err := parseSplitFlag("-train-split", cfg.TrainSplit); err != nil {
		return cfg, err
	}
	if _, err := parseSplitFlag("-val-split", cfg.ValSplit); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// parseSplitFlag parses the split expression of the flag name and refuses what is wrong whatever
// the data: bad syntax, split names other than "train", and slices that select nothing.
func parseSplitFlag(name, expr string) (datasets.SplitSpec, error) {
	spec, err := datasets.ParseSplit(expr)
	if err != nil {
		return spec, usagef("%s: %v", name, err)
	}
	if _, err := spec.Ranges(0); err != nil { // the split names, before any data is opened
		return spec, usagef("%s: %v", name, err)
	}
	if spec.SelectsNothing() {
		return spec, usagef("%s %q selects no examples (it ends where or before it starts): give a slice such as train[:40%%] or train[40%%:50%%]",
			name, expr)
	}
	return spec, nil
}

// wantsSmall reports whether args hold -small (checked before parsing, so that the small
// configuration is the base that the other flags change).
func wantsSmall(args []string) bool {
	for _, a := range args {
		switch a {
		case "-small", "--small", "-small=true", "--small=true":
			return true
		case "--":
			return false
		}
	}
	return false
}

// useSmall makes training.Small() the values the flags start from.
func (c *configFlags) useSmall() {
	c.cfg = training.Small() // the flags point into c.cfg's fields, which stay where they are
	m := c.cfg.Model
	c.inp = fmt.Sprintf("%dx%d", m.InputHeight, m.InputWidth)
	c.target = fmt.Sprintf("%dx%d", m.TargetHeight, m.TargetWidth)
	c.blocks = strings.Trim(strings.ReplaceAll(fmt.Sprint(m.Blocks), " ", ","), "[]")
	c.cfg.Model.Blocks = nil // resolve parses c.blocks again
}

// parseSize accepts "N" or "HxW".
func parseSize(s string) (h, w int, err error) {
	parts := strings.Split(strings.ToLower(s), "x")
	if len(parts) > 2 {
		return 0, 0, fmt.Errorf("%q: want N or HxW", s)
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		if nums[i], err = strconv.Atoi(strings.TrimSpace(p)); err != nil || nums[i] <= 0 {
			return 0, 0, fmt.Errorf("%q: want N or HxW with positive integers", s)
		}
	}
	if len(nums) == 1 {
		return nums[0], nums[0], nil
	}
	return nums[0], nums[1], nil
}

// parseConfig parses a command's flags, rejects positional arguments and resolves the configuration.
func parseConfig(fs *flag.FlagSet, args []string, cf *configFlags) (training.Config, error) {
	if wantsSmall(args) {
		cf.useSmall()
	}
	if err := parse(fs, args); err != nil {
		return training.Config{}, err
	}
	fs.Visit(func(f *flag.Flag) {
		cf.presetSet = cf.presetSet || f.Name == "preset" || f.Name == "backbone"
		cf.blocksSet = cf.blocksSet || f.Name == "blocks"
		cf.growthSet = cf.growthSet || f.Name == "growth"
	})
	if fs.NArg() > 0 {
		return training.Config{}, usagef("unexpected arguments %q", fs.Args())
	}
	return cf.resolve()
}

// startCommand is parseConfig, then starts the backend, printing the one-line backend report to
// stderr.
func startCommand(fs *flag.FlagSet, args []string, cf *configFlags, stderr io.Writer) (training.Config, compute.Backend, backend.Info, error) {
	cfg, err := parseConfig(fs, args, cf)
	if err != nil {
		return cfg, nil, backend.Info{}, err
	}
	b, info, err := backend.New()
	if err != nil {
		return cfg, nil, info, err
	}
	fmt.Fprintln(stderr, info)
	if cfg.Model.BFloat16 && info.IsONNX() {
		b.Finalize()
		return cfg, nil, info, usagef("-bf16: ONNX Runtime has no bfloat16 convolutions; drop -bf16, or choose the go backend " +
			"(GOMLX_BACKEND=go) or XLA on a GPU")
	}
	return cfg, b, info, nil
}
