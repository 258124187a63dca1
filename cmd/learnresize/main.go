// Command learnresize runs the keras.io "Learning to Resize Images for Computer Vision Tasks"
// tutorial in Go: train and compare the DenseNet-121 classifier with and without the learnable resizer
// on cats vs dogs, print model summaries, and apply a trained resizer to images.
//
//	learnresize compare              # the tutorial's experiment (downloads the data on first use)
//	learnresize train [-baseline]    # one model
//	learnresize resize -checkpoint DIR image.jpg ...   # apply a trained resizer
//	learnresize summary [-baseline]  # Keras-style summary
//	learnresize download             # fetch (or verify) the cats_vs_dogs zip
//	learnresize export -split S -out DIR   # a split's images, for another framework
//	learnresize bench [-peer FILE]   # benchmarks, beside a PyTorch peer's figures
//
// The commands that compute on a backend (compare, warmstart, train, resize, bench) print which one
// they run on; GOMLX_BACKEND overrides the choice (see package backend). summary always builds its
// model on the pure-Go backend, and download and export compute nothing.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// exitUsage is the exit code for bad command lines; runtime failures exit with 1.
const exitUsage = 2

// usageError marks errors in the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is every command, by name: the usage lists them in this order.
var commands = map[string]command{
	"compare":     {"train both models from the same initial weights and print the tutorial's table", runCompare},
	"warmstart":   {"the paper's warm-start experiment: fine-tune at -inp, evaluate at -target, warm-start a resizer there", runWarmStart},
	"train":       {"train one model (-baseline: plain resize instead of the learnable resizer)", runTrain},
	"resize":      {"apply a trained resizer to image files or folders (PNG outputs and side-by-side views)", runResize},
	"serve":       {"serve a trained run's web page (learned resize and probabilities, computed in the browser) on 127.0.0.1", runServe},
	"export-onnx": {"write a trained run as ONNX files (model.onnx, resizer.onnx) for ONNX Runtime and other runtimes", runExportONNX},
	"summary":     {"Keras-style summary of the model (-baseline for the plain-resize one)", runSummary},
	"download":    {"download (or verify) the cats_vs_dogs zip and report what TFDS's rule keeps", runDownload},
	"export":      {"copy a split's original images into a folder (the same examples for another framework)", runExport},
	"bench":       {"time the resize op, the resizer, train and eval steps, and the input pipeline", runBench},
}

// commandOrder is the order of the usage text: the main job first.
var commandOrder = []string{"compare", "warmstart", "train", "resize", "export-onnx", "serve", "summary", "download", "export", "bench"}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: learnresize <command> [flags]\n\nCommands:")
	for _, n := range commandOrder {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'learnresize <command> -h' for a command's flags.")
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "learnresize: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	err := cmd.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	// The libraries prefix their errors with what failed ("export: ..."); said once is enough.
	fmt.Fprintf(stderr, "learnresize %s: %s\n", args[0], strings.TrimPrefix(err.Error(), args[0]+": "))
	switch {
	case isUsage(err):
		return exitUsage
	case errors.As(err, new(interruptedError)):
		return exitInterrupted
	default:
		return 1
	}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// newFlagSet makes a flag set whose parse errors become usage errors.
func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: learnresize %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{strings.TrimSpace(err.Error())}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
