package main

import (
	"context"
	"io"

	"github.com/learnresize/learnresize/training"
)

// runWarmStart is the paper's warm-start experiment (training.WarmStart): a network fine-tuned at the
// input size, evaluated at the target size behind a plain resize, then with a plain resize and with
// the learnable resizer in front, each warm-started from it and trained at the target size.
func runWarmStart(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("warmstart", stderr, "warmstart [-pretrained FILE] [-inp 224 -target 112] [-finetune-epochs N] [-seeds N|a,b,c] [-data PATH] [-out DIR] [-resume] [config flags]")
	cf := addConfigFlags(fs, modelFlags|computeFlags|batchFlag|trainingFlags|splitFlags)
	ef := addExperimentFlags(fs, "warmstart")
	finetune := fs.Int("finetune-epochs", 0, "epochs of the first stage, fine-tuning at -inp (0: -epochs)")
	cfg, b, info, err := startCommand(fs, args, cf, stderr)
	if err != nil {
		return err
	}
	if *finetune < 0 {
		return usagef("-finetune-epochs %d: want a positive number (0: the same as -epochs)", *finetune)
	}
	m := cfg.Model
	if m.TargetHeight >= m.InputHeight && m.TargetWidth >= m.InputWidth {
		return usagef("-target %dx%d must be smaller than -inp %dx%d: the experiment measures a network at a lower resolution than it was fine-tuned at",
			m.TargetHeight, m.TargetWidth, m.InputHeight, m.InputWidth)
	}
	return ef.run(cfg, b, info, "the warm-start experiment", stdout, stderr,
		func(ctx context.Context, cfg training.Config, data training.Data, seeds []int64, opt training.Options) (*training.Comparison, error) {
			return training.WarmStart(ctx, b, cfg, data, seeds, training.WarmStartOptions{Options: opt, FinetuneEpochs: *finetune})
		})
}
