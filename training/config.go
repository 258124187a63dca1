// Package training runs the keras.io "Learning to Resize Images" experiment: it trains the tutorial's
// models (package models) as Keras' model.fit does, evaluates them, keeps a history and checkpoints
// that survive interruption, and compares the model with the learnable resizer against the plain
// resize baseline. The notebook and the learnresize command both call it.
//
// Keras equivalents: loss CategoricalCrossentropy(label_smoothing=0.1) on softmax outputs
// (SmoothedCrossEntropy, from logits), optimizer "sgd" = SGD(learning_rate=0.01), no momentum, no decay
// (GoMLX's SGD defaults to 0.1 with 1/sqrt(step) decay: both are overridden), metric "accuracy";
// validation in inference mode (batch-norm moving statistics).
package training

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/models"
)

// Config holds the tutorial's hyperparameters (Default) and the options beyond them.
type Config struct {
	// Model is the network: input size (INP_SIZE), target size (TARGET_SIZE), interpolation, resizer
	// filters and residual blocks, DenseNet preset, and whether the learnable resizer is used.
	Model models.Config `json:"model"`
	// BatchSize (BATCH_SIZE, 64) and Epochs (EPOCHS, 5).
	BatchSize int `json:"batch_size"`
	Epochs    int `json:"epochs"`
	// LearningRate of plain SGD (Keras' default 0.01).
	LearningRate float64 `json:"learning_rate"`
	// LabelSmoothing of the cross-entropy (0.1).
	LabelSmoothing float64 `json:"label_smoothing"`
	// Seed fixes the initial weights and the data order (same seed, same run).
	Seed int64 `json:"seed"`
	// TrainSplit and ValSplit are TFDS split expressions ("train[:40%]", "train[40%:50%]").
	TrainSplit string `json:"train_split"`
	ValSplit   string `json:"val_split"`
	// ShuffleBuffer is the shuffle buffer size (BATCH_SIZE*100 in the tutorial); 0 means BatchSize*100.
	ShuffleBuffer int `json:"shuffle_buffer"`
	// Pretrained, when set, is a torchvision weights file (.pth or .safetensors) of the model's
	// backbone (a DenseNet, or a ResNet in the torchvision layout) whose backbone a new run starts
	// from (models.LoadPretrainedBackbone: the classifier is fresh, for the model's classes); the
	// resizer, if any, starts from its seeded initialisation.
	Pretrained string `json:"pretrained,omitempty"`
	// FreezeBackboneEpochs keeps the pretrained backbone's kernels and batch-norm scales and offsets
	// (not its classifier) fixed for this many first epochs, so that a fresh classifier (and resizer)
	// can settle before fine-tuning; it needs Pretrained. The batch norms still normalise with batch
	// statistics and update their moving averages (Keras' trainable=False would also switch them to
	// inference mode). Unfreezing compiles the training graph again.
	FreezeBackboneEpochs int `json:"freeze_backbone_epochs,omitempty"`
	// WarmStart, when set, is a training run's folder (or one of its checkpoints) whose backbone a new
	// run starts from, classifier and batch-norm statistics included: the warm start of the paper's
	// experiment (WarmStart), where a resizer is put in front of a network already fine-tuned for the
	// task. The resizer, if any, starts from its seeded initialisation. Not with Pretrained.
	WarmStart string `json:"warm_start,omitempty"`
	// Lean runs the training on ONNX Runtime without buffer sharing (ortlib.LeanConfig: its
	// parallel executor, whose planner gives no value a dead value's buffer, one thread per
	// operation): with Recompute, 5.8 GB instead of 13-18 GB at the tutorial's batch 64, for 1.6
	// to 2 times the time (docs/BENCHMARKS.md). The same values, computed the same way.
	// CheckMemory turns it on when nothing faster fits; on other backends it changes nothing.
	Lean bool `json:"lean,omitempty"`
}

// Default returns the tutorial's settings, with the learnable resizer.
func Default() Config {
	return Config{
		Model:     models.Tutorial(),
		BatchSize: 64, Epochs: 5, LearningRate: 0.01, LabelSmoothing: 0.1, Seed: 42,
		TrainSplit: "train[:40%]", ValSplit: "train[40%:50%]",
	}
}

// Small is the quick configuration, for CPUs and for trying the whole pipeline: 64x64 -> 32x32, a
// resizer of 4 filters, a DenseNet of two dense blocks of 2 layers with growth 8, batch 16, 2 epochs,
// 320 training and 160 validation images. A comparison takes about a minute on two CPU cores; its
// accuracies mean little (batch norm's moving statistics need a few hundred steps). The command's
// -small and the notebook's LEARNRESIZE_TINY use it.
func Small() Config {
	c := Default()
	m := &c.Model
	m.InputHeight, m.InputWidth, m.TargetHeight, m.TargetWidth = 64, 64, 32, 32
	m.Filters, m.Preset, m.Blocks, m.Growth = 4, "", []int{2, 2}, 8
	c.BatchSize, c.Epochs = 16, 2
	c.TrainSplit, c.ValSplit = "train[:320]", "train[320:480]"
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if err := c.Model.Validate(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	switch {
	case c.BatchSize <= 0:
		return fmt.Errorf("batch size %d must be positive", c.BatchSize)
	case c.Epochs <= 0:
		return fmt.Errorf("epochs %d must be positive", c.Epochs)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0): // NaN fails the comparison
		return fmt.Errorf("learning rate %g must be a positive number", c.LearningRate)
	case !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 1):
		return fmt.Errorf("label smoothing %g must be in [0, 1)", c.LabelSmoothing)
	case c.ShuffleBuffer < 0:
		return fmt.Errorf("shuffle buffer %d must not be negative", c.ShuffleBuffer)
	case c.FreezeBackboneEpochs < 0 || c.FreezeBackboneEpochs > 0 && c.Pretrained == "" && c.WarmStart == "":
		return fmt.Errorf("freezing the backbone for %d epochs needs pretrained weights (-pretrained)", c.FreezeBackboneEpochs)
	case c.Pretrained != "" && c.WarmStart != "":
		return fmt.Errorf("a run starts from pretrained weights (%s) or from another run (%s), not both", c.Pretrained, c.WarmStart)
	}
	train, err := datasets.ParseSplit(c.TrainSplit)
	if err != nil {
		return fmt.Errorf("training split: %w", err)
	}
	val, err := datasets.ParseSplit(c.ValSplit)
	if err != nil {
		return fmt.Errorf("validation split: %w", err)
	}
	if train.String() == val.String() {
		return fmt.Errorf("the training and validation splits are the same (%s): validation would only measure memorisation", train)
	}
	return nil
}

// SplitError is a training or validation split that does not fit the data: it selects none of its
// examples, or the two share some. It shows once the data is listed, before any image is decoded
// (OpenData); the command reports it as a bad flag, naming its flags (Describe).
type SplitError struct {
	// Which split is wrong: "train", "val", or "both" (they overlap).
	Which string
	// Train and Val are the two split expressions.
	Train, Val string
	// Problem is what is wrong, written to follow the split's name(s).
	Problem string
}

func (e *SplitError) Error() string { return e.Describe("the training split", "the validation split") }

// Describe writes the error with the given names of the two splits (a command's flags, say).
func (e *SplitError) Describe(trainName, valName string) string {
	switch e.Which {
	case "train":
		return fmt.Sprintf("%s %q %s", trainName, e.Train, e.Problem)
	case "val":
		return fmt.Sprintf("%s %q %s", valName, e.Val, e.Problem)
	}
	return fmt.Sprintf("%s %q and %s %q %s", trainName, e.Train, valName, e.Val, e.Problem)
}

// checkSplitsFit refuses, as *SplitError, splits that select none of the n examples of the source at
// root, or that share some (validation accuracy on training examples is not a validation accuracy).
func (c Config) checkSplitsFit(n int, root string) error {
	exprs := [2]string{c.TrainSplit, c.ValSplit}
	var specs [2]datasets.SplitSpec
	for i, which := range [2]string{"train", "val"} {
		spec, err := datasets.ParseSplit(exprs[i])
		if err != nil {
			return err // Validate has refused it already
		}
		if err := spec.CheckSelects(n, root); err != nil {
			return &SplitError{Which: which, Train: c.TrainSplit, Val: c.ValSplit, Problem: err.Error()}
		}
		specs[i] = spec
	}
	shared, err := datasets.Overlap(specs[0], specs[1], n)
	if err != nil {
		return err
	}
	if shared > 0 {
		return &SplitError{Which: "both", Train: c.TrainSplit, Val: c.ValSplit,
			Problem: fmt.Sprintf("share %d of the %d examples of %s: choose disjoint splits (validation on training examples measures memorisation)", shared, n, root)}
	}
	return nil
}

// Buffer is the effective shuffle buffer size.
func (c Config) Buffer() int {
	if c.ShuffleBuffer > 0 {
		return c.ShuffleBuffer
	}
	return c.BatchSize * 100
}

// compatible reports why a run with config c cannot resume a checkpoint written with config old
// (nil if it can: only Epochs may grow, and Recompute and Lean may differ, since they change how a
// step uses memory, not what it computes; the memory check may choose them).
func (c Config) compatible(old Config) error {
	a, b := c, old
	a.Epochs, b.Epochs = 0, 0
	a.Model.Recompute, b.Model.Recompute = false, false
	a.Lean, b.Lean = false, false
	for _, x := range []*Config{&a, &b} {
		if len(x.Model.Blocks) > 0 {
			x.Model.Preset = "" // ignored with blocks (runs before 2026-11-26 recorded the default preset)
		}
	}
	fa, fb := flatJSON(a), flatJSON(b)
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(fa)) {
		if fa[k] != fb[k] {
			diffs = append(diffs, fmt.Sprintf("%s: %s in the checkpoint, %s now", k, orNone(fb[k]), orNone(fa[k])))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fb)) {
		if _, ok := fa[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %s in the checkpoint, absent now", k, fb[k]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the checkpoint was written with another configuration (%s): use the run's settings, or start a new run in another directory",
			strings.Join(diffs, "; "))
	}
	return nil
}

// flatJSON maps each leaf of v's JSON form to its JSON text, keyed by its path ("model.Filters").
func flatJSON(v any) map[string]string {
	raw, _ := json.Marshal(v)
	var tree any
	_ = json.Unmarshal(raw, &tree)
	out := map[string]string{}
	var walk func(prefix string, t any)
	walk = func(prefix string, t any) {
		if m, ok := t.(map[string]any); ok {
			for k, sub := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
			}
			return
		}
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
	walk("", tree)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}
