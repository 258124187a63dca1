package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/compute"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/plots"
	"github.com/learnresize/learnresize/summary"
	"github.com/learnresize/learnresize/training"
)

// dataFlags are the flags saying where the images are.
type dataFlags struct {
	path, dataDir  string
	devicePrefetch int
	skippedFile    string
	memoryCheck    bool // set by addMemoryCheckFlag (the commands that train)
}

// addMemoryCheckFlag adds -memory-check to the commands that train (train, compare, warmstart).
func (d *dataFlags) addMemoryCheckFlag(fs *flag.FlagSet) {
	fs.BoolVar(&d.memoryCheck, "memory-check", true,
		"estimate the training step's memory before compiling; recompute activations, or train -lean, where only that "+
			"fits, refuse a batch that cannot fit even so (false: run as asked)")
}

// addDataFlags adds the flags saying where the images are; with prefetch, -device-prefetch too
// (commands that feed a device).
func addDataFlags(fs *flag.FlagSet, prefetch bool) *dataFlags {
	d := &dataFlags{}
	fs.StringVar(&d.path, "data", "", "cats_vs_dogs zip, PetImages folder, or image folder (one sub-folder per class); empty: download cats_vs_dogs")
	fs.StringVar(&d.dataDir, "data-dir", "", "downloads and caches (default $LEARNRESIZE_DATA_DIR or the user cache dir)")
	if prefetch {
		fs.IntVar(&d.devicePrefetch, "device-prefetch", 0, fmt.Sprintf(
			"batches read and copied to the device ahead of the training step (0: the default, %d; -1: none), as training.Options.DevicePrefetch",
			training.DefaultDevicePrefetch))
	}
	fs.StringVar(&d.skippedFile, "skipped", "", "write every skipped file with its reason to this file (tab-separated)")
	return d
}

// reportSkipped prints the skip counts (the same on every run: decode skips are stored with the
// cache) and, with -skipped, writes the full list.
func (d *dataFlags) reportSkipped(r datasets.SkipReport, stderr io.Writer) error {
	ignored := r.Counts[datasets.SkipIgnored]
	fmt.Fprintf(stderr, "skipped: %d files", r.Total())
	if r.Total() > 0 {
		rest := r
		rest.Counts = maps.Clone(r.Counts)
		delete(rest.Counts, datasets.SkipIgnored)
		fmt.Fprintf(stderr, " (%s)", rest)
	}
	if ignored > 0 {
		fmt.Fprintf(stderr, "; %d other files ignored (not candidate images)", ignored)
	}
	if d.skippedFile == "" {
		if r.Total()+ignored > 0 {
			fmt.Fprint(stderr, "; -skipped FILE lists them")
		}
		fmt.Fprintln(stderr)
		return nil
	}
	var buf bytes.Buffer
	if err := r.WriteTSV(&buf); err != nil {
		return err
	}
	if err := fileutil.WriteAtomic(d.skippedFile, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-skipped: %w", err)
	}
	fmt.Fprintf(stderr, "; list in %s\n", d.skippedFile)
	return nil
}

func (d *dataFlags) options(stderr io.Writer) training.DataOptions {
	return training.DataOptions{Path: d.path, DataDir: d.dataDir, Progress: stderr}
}

// openData checks the data flags, opens the images as cfg wants them and reports what was opened.
// Splits that do not fit the data (training.SplitError, known once the source is listed, before any
// image is decoded) are bad flags.
func openData(ctx context.Context, cfg training.Config, df *dataFlags, stderr io.Writer) (*training.OpenedData, error) {
	if err := df.check(); err != nil {
		return nil, err
	}
	data, err := training.OpenData(ctx, cfg, df.options(stderr))
	if se := (*training.SplitError)(nil); errors.As(err, &se) {
		return nil, usagef("%s", se.Describe("-train-split", "-val-split"))
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "data: %s: %d training and %d validation examples, classes %v\n", data.Source, data.NumTrain, data.NumVal, data.Classes)
	if err := df.reportSkipped(data.Skipped, stderr); err != nil {
		_ = data.Close()
		return nil, err
	}
	return data, nil
}

// checkMemory is -memory-check's early refusal: once the flags and the data are checked (and the
// cache built, which takes seconds), before the slow-step warning and before anything compiles, it
// refuses (training.CheckMemory) a batch whose training step cannot fit, recomputing activations or
// not. The estimate, and whether to recompute, are the library's to print and decide, per model
// (Fit, and Compare and WarmStart for each model they train): skipMemoryCheck is what they are told.
func (d *dataFlags) checkMemory(b compute.Backend, cfg training.Config, numTrain int) error {
	if !d.memoryCheck {
		return nil
	}
	_, err := training.CheckMemory(b, cfg, numTrain)
	return err
}

// skipMemoryCheck is training.Options.SkipMemoryCheck: -memory-check=false.
func (d *dataFlags) skipMemoryCheck() bool { return !d.memoryCheck }

// prefetchOption is training.Options.DevicePrefetch: -device-prefetch has its meaning.
func (d *dataFlags) prefetchOption() int { return d.devicePrefetch }

func (d *dataFlags) check() error {
	if d.devicePrefetch < -1 {
		return usagef("-device-prefetch %d: want 0 (the default), a positive number of batches, or -1 (none)", d.devicePrefetch)
	}
	if d.path != "" {
		if _, err := os.Stat(d.path); err != nil {
			return fmt.Errorf("-data: %w; give the cats_vs_dogs zip, a PetImages folder or an image folder with one "+
				"sub-folder per class, or leave -data out to download cats_vs_dogs", err)
		}
	}
	return nil
}

func interactive(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", stderr, "train [-baseline] [-data PATH] [-out DIR] [-resume] [config flags]")
	cf := addConfigFlags(fs, modelFlags|computeFlags|baselineFlag|batchFlag|trainingFlags|splitFlags)
	df := addDataFlags(fs, true)
	df.addMemoryCheckFlag(fs)
	out := fs.String("out", "", "output directory (default runs/<resizer|baseline>-seed<seed>)")
	resume := fs.Bool("resume", false, "continue the run in -out from its latest checkpoint")
	resumeFrom := fs.String("resume-from", "", "with -resume: continue from this checkpoint (e.g. epoch-0001) instead of the latest")
	cfg, b, info, err := startCommand(fs, args, cf, stderr)
	if err != nil {
		return err
	}
	if *resumeFrom != "" && !*resume {
		return usagef("-resume-from needs -resume")
	}
	if *out == "" {
		*out = filepath.Join("runs", fmt.Sprintf("%s-seed%d", cfg.Model.Name(), cfg.Seed))
	}
	it := newInterrupter(stderr, "training")
	defer it.Close()
	ctx := it.ctx
	resumeHint := fmt.Sprintf("run the same command again with -resume (-out %s)", *out)
	data, err := openData(ctx, cfg, df, stderr)
	if err != nil {
		return interrupted(ctx, err, "")
	}
	defer data.Close()
	if err := df.checkMemory(b, cfg, data.Data.NumTrain); err != nil {
		return err
	}
	warnSlowSteps(stderr, info, cfg)
	h, err := training.Fit(ctx, b, cfg, data.Data, training.Options{Dir: *out, Resume: *resume, ResumeFrom: *resumeFrom, Log: stderr,
		Interactive: interactive(stderr), BackendInfo: info.String(), DevicePrefetch: df.prefetchOption(), OnStep: it.onStep,
		SkipMemoryCheck: df.skipMemoryCheck()})
	if err != nil {
		return interrupted(ctx, err, resumeHint)
	}
	resizerRun := ""
	if cfg.Model.Resizer {
		resizerRun = *out
	}
	majority, err := data.ValMajority()
	if err != nil {
		return err
	}
	if err := saveFigures(b, *out, []plots.Series{{Name: cfg.Model.Title(), History: h, ValMajority: majority}}, resizerRun, data, stdout); err != nil {
		return fmt.Errorf("figures: %w", err)
	}
	last := h.Last()
	epochs := fmt.Sprintf("%d epochs", len(h.Epochs))
	if len(h.Epochs) == 1 {
		epochs = "1 epoch"
	}
	fmt.Fprintf(stdout, "%s: %s parameters; after %s: val_accuracy %.4f (best %.4f), val_loss %.4f; history and checkpoints in %s\n",
		cfg.Model.Title(), summary.Commas(h.Params), epochs, last.ValAccuracy, h.BestValAccuracy(), last.ValLoss, *out)
	return nil
}

// runCompare is the compare command: flags, data, training.Compare, the table and the figures.
// (A sequence of library calls, each with its error check.)
func runCompare(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", stderr, "compare [-seeds N|a,b,c] [-data PATH] [-out DIR] [-resume] [config flags]")
	cf := addConfigFlags(fs, modelFlags|computeFlags|batchFlag|trainingFlags|splitFlags)
	ef := addExperimentFlags(fs, "compare")
	cfg, b, info, err := startCommand(fs, args, cf, stderr)
	if err != nil {
		return err
	}
	return ef.run(cfg, b, info, "the comparison", stdout, stderr,
		func(ctx context.Context, cfg training.Config, data training.Data, seeds []int64, opt training.Options) (*training.Comparison, error) {
			return training.Compare(ctx, b, cfg, data, seeds, opt)
		})
}

// experimentFlags are the flags of the commands that train several runs into one folder and
// tabulate them (compare, warmstart): where the data is, the output folder, -resume and -seeds.
type experimentFlags struct {
	data   *dataFlags
	out    *string
	resume *bool
	seeds  *string
}

func addExperimentFlags(fs *flag.FlagSet, name string) *experimentFlags {
	d := addDataFlags(fs, true)
	d.addMemoryCheckFlag(fs)
	return &experimentFlags{
		data:   d,
		out:    fs.String("out", filepath.Join("runs", name), "output directory"),
		resume: fs.Bool("resume", false, "continue interrupted runs in -out"),
		seeds:  fs.String("seeds", "1", "number of seeds (seed, seed+1, ...) or a comma-separated list"),
	}
}

// run is what compare and warmstart share around their library call: the seeds, Ctrl-C handling,
// the data, the slow-step warning, the training options, then the table and the figures. what names
// the experiment in the interrupt messages.
func (ef *experimentFlags) run(cfg training.Config, b compute.Backend, info backend.Info, what string, stdout, stderr io.Writer,
	experiment func(ctx context.Context, cfg training.Config, data training.Data, seeds []int64, opt training.Options) (*training.Comparison, error)) error {
	seeds, err := parseSeeds(*ef.seeds, cfg.Seed)
	if err != nil {
		return err
	}
	it := newInterrupter(stderr, what)
	defer it.Close()
	ctx := it.ctx
	data, err := openData(ctx, cfg, ef.data, stderr)
	if err != nil {
		return interrupted(ctx, err, "")
	}
	defer data.Close()
	if err := ef.data.checkMemory(b, cfg, data.Data.NumTrain); err != nil {
		return err
	}
	warnSlowSteps(stderr, info, cfg)
	cmp, err := experiment(ctx, cfg, data.Data, seeds, training.Options{Dir: *ef.out, Resume: *ef.resume, Log: stderr,
		Interactive: interactive(stderr), BackendInfo: info.String(), DevicePrefetch: ef.data.prefetchOption(), OnStep: it.onStep,
		SkipMemoryCheck: ef.data.skipMemoryCheck()})
	if err != nil {
		return interrupted(ctx, err, fmt.Sprintf("run the same command again with -resume (-out %s)", *ef.out))
	}
	fmt.Fprint(stdout, "\n"+cmp.Markdown())
	return writeComparison(b, *ef.out, cmp, data, stdout)
}

// writeComparison draws a finished comparison's figures into out (the curves of every run of every
// row that has run folders, each model in its colour; the trained resizer's grid; the bars) and says
// where they and the table are.
func writeComparison(b compute.Backend, out string, cmp *training.Comparison, data *training.OpenedData, stdout io.Writer) error {
	majority, err := data.ValMajority()
	if err != nil {
		return err
	}
	var series []plots.Series // every seed of each model, in the model's colour
	resizerRun := ""
	for _, row := range cmp.Rows {
		for _, seed := range cmp.Seeds {
			dir := filepath.Join(out, fmt.Sprintf("%s-seed%d", row.Name, seed))
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				continue // a row without runs (the warm-start experiment's evaluation at the low resolution)
			}
			h, err := training.LoadHistory(dir)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("%s (seed %d)", row.Model, seed)
			if len(cmp.Seeds) > 1 {
				name = fmt.Sprintf("%s (%d seeds)", row.Model, len(cmp.Seeds))
			}
			series = append(series, plots.Series{Name: name, History: h, ValMajority: majority})
			if resizerRun == "" && h.Config.Model.Resizer {
				resizerRun = dir
			}
		}
	}
	bars, err := plots.ComparisonBars(cmp)
	if err != nil {
		return err
	}
	if err := bars.Save(filepath.Join(out, "comparison.png")); err != nil {
		return err
	}
	if err := saveFigures(b, out, series, resizerRun, data, stdout, filepath.Join(out, "comparison.png")); err != nil {
		return fmt.Errorf("figures: %w", err)
	}
	fmt.Fprintf(stdout, "\nTable written to %s and %s\n", filepath.Join(out, "comparison.md"), filepath.Join(out, "comparison.json"))
	return nil
}

// parseSeeds accepts a count N (seeds base, base+1, ...) or a comma-separated list.
func parseSeeds(s string, base int64) ([]int64, error) {
	if !strings.Contains(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, usagef("-seeds %q: want a positive count or a comma-separated list", s)
		}
		seeds := make([]int64, n)
		for i := range seeds {
			seeds[i] = base + int64(i)
		}
		return seeds, nil
	}
	var seeds []int64
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		if err != nil {
			return nil, usagef("-seeds %q: %q is not an integer", s, part)
		}
		if slices.Contains(seeds, v) {
			return nil, usagef("-seeds %q: seed %d is listed twice (each seed's runs go to one directory)", s, v)
		}
		seeds = append(seeds, v)
	}
	return seeds, nil
}
