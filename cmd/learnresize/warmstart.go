package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/learnresize/learnresize/training"
)

// runWarmStart is the paper's warm-start experiment (training.WarmStart): a network fine-tuned at the
// input size, evaluated at the target size behind a plain resize, then with a plain resize and with
// the learnable resizer in front, each warm-started from it and trained at the target size.
func runWarmStart(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("warmstart", stderr, "warmstart [-pretrained FILE] [-inp 224 -target 112] [-finetune-epochs N] [-seeds N|a,b,c] [-data PATH] [-out DIR] [-resume] [config flags]")
	cf := addConfigFlags(fs, modelFlags|batchFlag|trainingFlags|splitFlags)
	df := addDataFlags(fs, true)
	out := fs.String("out", filepath.Join("runs", "warmstart"), "output directory")
	resume := fs.Bool("resume", false, "continue interrupted runs in -out")
	seedsFlag := fs.String("seeds", "1", "number of seeds (seed, seed+1, ...) or a comma-separated list")
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
	seeds, err := parseSeeds(*seedsFlag, cfg.Seed)
	if err != nil {
		return err
	}
	it := newInterrupter(stderr, "the warm-start experiment")
	defer it.Close()
	ctx := it.ctx
	data, err := openData(ctx, cfg, df, stderr)
	if err != nil {
		return interrupted(ctx, err, "")
	}
	defer data.Close()
	warnSlowSteps(stderr, info, cfg)
	cmp, err := training.WarmStart(ctx, b, cfg, data.Data, seeds, training.WarmStartOptions{FinetuneEpochs: *finetune,
		Options: training.Options{Dir: *out, Resume: *resume, Log: stderr, Interactive: interactive(stderr), BackendInfo: info.String(),
			DevicePrefetch: df.prefetchOption(), OnStep: it.onStep}})
	if err != nil {
		return interrupted(ctx, err, fmt.Sprintf("run the same command again with -resume (-out %s)", *out))
	}
	fmt.Fprint(stdout, "\n"+cmp.Markdown())
	return writeComparison(b, *out, cmp, data, stdout)
}
