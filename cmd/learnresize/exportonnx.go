package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"

	"github.com/learnresize/learnresize/onnxexport"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// runExportONNX writes a trained run as ONNX files (package onnxexport): model.onnx, the whole
// classifier, and resizer.onnx, its learnable resizer alone (none for a baseline run). Reading the
// weights needs no accelerator: it runs on the pure-Go backend and prints no backend line.
func runExportONNX(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export-onnx", stderr, "export-onnx -checkpoint RUN -out DIR [-force]")
	ckpt := fs.String("checkpoint", "", "a training run directory (its latest checkpoint is used) or a checkpoint directory")
	out := fs.String("out", "", "output directory for model.onnx and resizer.onnx (created if missing)")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *ckpt == "" || *out == "" {
		return usagef("-checkpoint and -out are required")
	}
	if _, err := os.Stat(*ckpt); err != nil {
		return fmt.Errorf("-checkpoint: %w", err)
	}
	store, cfg, err := training.LoadRun(*ckpt)
	if err != nil {
		return err
	}
	files := []string{filepath.Join(*out, "model.onnx")}
	if cfg.Model.Resizer {
		files = append(files, filepath.Join(*out, "resizer.onnx"))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err == nil && !*force {
			return fmt.Errorf("%s exists (use -force to overwrite)", f)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	m := cfg.Model
	if err := onnxexport.WriteClassifier(store, m, files[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, input %q uint8 [N, %d, %d, 3] (pixels), outputs %q and %q float32 [N, %d], ONNX opset %d\n",
		files[0], m, onnxexport.ClassifierInput, m.InputHeight, m.InputWidth, onnxexport.Logits, onnxexport.Probabilities, m.Classes, onnxexport.Opset)
	if !m.Resizer {
		return nil
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		return err
	}
	defer b.Finalize()
	rz, err := resizer.Load(b, *ckpt)
	if err != nil {
		return err
	}
	if err := onnxexport.WriteResizer(rz, files[1]); err != nil {
		return err
	}
	rc := rz.Config()
	fmt.Fprintf(stdout, "%s: the learnable resizer (%s), input %q float32 [N, H, W, 3] (pixels / 255, any H and W), output %q [N, %d, %d, 3]\n",
		files[1], rc, onnxexport.ResizerInput, onnxexport.ResizerOutput, rc.TargetHeight, rc.TargetWidth)
	return nil
}
