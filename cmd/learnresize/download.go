package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/learnresize/learnresize/datasets"
)

func runDownload(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", stderr, "download [-data-dir DIR] [-sha256 HEX]")
	dataDir := fs.String("data-dir", "", "where to keep the zip (default $LEARNRESIZE_DATA_DIR or the user cache dir)")
	sum := fs.String("sha256", "", "expected SHA-256 of the zip, if the archive changed upstream (default: the known one, or $"+datasets.SHA256Env+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *sum != "" {
		if b, err := hex.DecodeString(*sum); err != nil || len(b) != sha256.Size {
			return usagef("-sha256 %q: want 64 hexadecimal digits", *sum)
		}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	it := newInterrupter(stderr, "the download")
	defer it.Close()
	src, err := datasets.CatsVsDogs(it.ctx, datasets.CatsVsDogsOptions{DataDir: *dataDir, SHA256: *sum, Progress: stderr})
	if err != nil {
		return interrupted(it.ctx, err, "run it again: the download resumes where it stopped")
	}
	defer src.Close()
	fmt.Fprintf(stdout, "%s: %d images kept, classes %v\n%s\n", src.Root(), src.Len(), src.Classes(), src.Skipped())
	return nil
}
