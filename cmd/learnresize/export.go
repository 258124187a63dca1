package main

import (
	"fmt"
	"io"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/training"
)

// runExport writes the images of one split, as the pipeline selects them, into a folder with the
// source's layout (PetImages/{Cat,Dog}/... for cats_vs_dogs), so the PyTorch peers train and validate
// on exactly the same examples as compare does.
func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr, "export -split EXPR -out DIR [-data PATH] [-data-dir DIR]")
	df := addDataFlags(fs, false)
	split := fs.String("split", "", "the split to export, TFDS syntax (e.g. \"train[:80%]\")")
	out := fs.String("out", "", "folder to create (must not exist)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *split == "" || *out == "" {
		return usagef("-split and -out are required")
	}
	spec, err := parseSplitFlag("-split", *split)
	if err != nil {
		return err
	}
	if err := df.check(); err != nil {
		return err
	}
	it := newInterrupter(stderr, "the export")
	defer it.Close()
	ctx := it.ctx
	src, err := training.OpenSource(ctx, df.options(stderr))
	if err != nil {
		return interrupted(ctx, err, "")
	}
	defer src.Close()
	if err := spec.CheckSelects(src.Len(), src.Root()); err != nil {
		return usagef("-split %q %v", spec, err)
	}
	res, err := datasets.ExportSplit(ctx, src, *split, *out)
	if err != nil {
		return interrupted(ctx, err, "run it again")
	}
	fmt.Fprintf(stdout, "%s: wrote %d images of %s (", res.Dir, res.Written, *split)
	for i, c := range src.Classes() {
		if i > 0 {
			fmt.Fprint(stdout, ", ")
		}
		fmt.Fprintf(stdout, "%s %d", c, res.PerClass[i])
	}
	fmt.Fprintln(stdout, ")")
	if res.Skipped.Total() > 0 {
		fmt.Fprintf(stdout, "left out (undecodable, as the training pipeline does): %s\n", res.Skipped)
	}
	return df.reportSkipped(src.Skipped().Merged(res.Skipped), stderr)
}
