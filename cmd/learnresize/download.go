package main

import (
	"fmt"
	"io"

	"github.com/learnresize/learnresize/datasets"
)

func init() {
	register("download", "download (or verify) the cats_vs_dogs zip and report what TFDS's rule keeps", runDownload)
}

func runDownload(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", stderr, "download [-data-dir DIR]")
	dataDir := fs.String("data-dir", "", "where to keep the zip (default $LEARNRESIZE_DATA_DIR or the user cache dir)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	it := newInterrupter(stderr, "the download")
	defer it.Close()
	src, err := datasets.CatsVsDogs(it.ctx, datasets.CatsVsDogsOptions{DataDir: *dataDir, Progress: stderr})
	if err != nil {
		return interrupted(it.ctx, err, "run it again: the download resumes where it stopped")
	}
	defer src.Close()
	fmt.Fprintf(stdout, "%s: %d images kept, classes %v\n%s\n", src.Root(), src.Len(), src.Classes(), src.Skipped())
	return nil
}
