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
)

// runExportONNX writes a trained run's learnable resizer as an ONNX file (onnxexport.Resizer), for
// ONNX Runtime and other runtimes. Reading the weights needs no accelerator: it runs on the
// pure-Go backend, and prints no backend line.
func runExportONNX(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export-onnx", stderr, "export-onnx -checkpoint RUN -out DIR [-force]")
	ckpt := fs.String("checkpoint", "", "a training run directory with the learnable resizer (its latest checkpoint is used) or a checkpoint directory")
	out := fs.String("out", "", "output directory: resizer.onnx is written there (created if missing)")
	force := fs.Bool("force", false, "overwrite an existing resizer.onnx")
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
	path := filepath.Join(*out, "resizer.onnx")
	if _, err := os.Stat(path); err == nil && !*force {
		return fmt.Errorf("%s exists (use -force to overwrite)", path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		return err
	}
	defer b.Finalize()
	m, err := resizer.Load(b, *ckpt)
	if err != nil {
		return fmt.Errorf("%w (export-onnx exports the learnable resizer: a baseline run has none)", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := onnxexport.WriteResizer(m, path); err != nil {
		return err
	}
	cfg := m.Config()
	fmt.Fprintf(stdout, "%s: the learnable resizer (%s), input %q float32 [N, H, W, 3] (pixels / 255, any H and W), output %q [N, %d, %d, 3], ONNX opset %d\n",
		path, cfg, onnxexport.ResizerInput, onnxexport.ResizerOutput, cfg.TargetHeight, cfg.TargetWidth, onnxexport.Opset)
	return nil
}
