package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/training"
)

// exitInterrupted is the exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT).
const exitInterrupted = 130

// interrupter turns the first Ctrl-C or SIGTERM into a cancelled context (the command stops after
// the step in progress, which cannot be cut short) and the second into an immediate exit. Either way
// the last complete checkpoint stays intact: checkpoints are written to a temporary folder and
// renamed, so a process stopped at any moment leaves the previous one.
type interrupter struct {
	ctx      context.Context
	cancel   context.CancelFunc
	lastStep atomic.Int64 // nanoseconds of the last training step, 0 before the first
	stop     func()
}

// newInterrupter starts listening; what is what the command is doing ("training"), for the message.
func newInterrupter(stderr io.Writer, what string) *interrupter {
	it := &interrupter{}
	it.ctx, it.cancel = context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	it.stop = func() {
		signal.Stop(sigs)
		close(done)
	}
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		wait := "the step in progress"
		if d := time.Duration(it.lastStep.Load()); d > 0 {
			r := time.Millisecond
			if d > time.Second {
				r = 100 * time.Millisecond
			}
			wait = fmt.Sprintf("the step in progress (the last one took %s)", d.Round(r))
		}
		fmt.Fprintf(stderr, "\nlearnresize: interrupted: %s stops after %s; completed epochs are saved. "+
			"Interrupt again to exit at once (the last complete checkpoint stays intact).\n", what, wait)
		it.cancel()
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "learnresize: exiting at once")
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	return it
}

// testStepDelay lengthens every training step; only tests set it (TestMain of the child process), to
// interrupt a step reliably while it is in progress.
var testStepDelay time.Duration

// testStepDelayLine is printed to stderr when a lengthened step starts its delay (tests wait for it).
const testStepDelayLine = "(test: the step is made longer)"

// onStep records a training step's duration (training.Options.OnStep).
func (it *interrupter) onStep(d time.Duration) {
	if testStepDelay > 0 {
		fmt.Fprintln(os.Stderr, testStepDelayLine)
		time.Sleep(testStepDelay)
		d += testStepDelay
	}
	it.lastStep.Store(int64(d))
}

// Close stops listening.
func (it *interrupter) Close() {
	it.stop()
	it.cancel()
}

// interruptedError is what a command returns when it stopped on an interrupt: the message says how
// to continue, and the exit status is 130.
type interruptedError struct{ resume string }

func (e interruptedError) Error() string {
	if e.resume == "" {
		return "interrupted"
	}
	return "interrupted; to continue: " + e.resume
}

// interrupted wraps err as an interruptedError when ctx was cancelled by the interrupter.
func interrupted(ctx context.Context, err error, resume string) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return interruptedError{resume: resume}
	}
	return err
}

// Seconds per image of a training step at 300x300 input, with the learnable resizer, on 2 cores,
// measured 2026-12-02 on an Intel Xeon VM (docs/BENCHMARKS.md, issue 26): batch 64 took 18.1 s on
// ONNX Runtime (batch 8: 1.8-1.95 s) and 183 s on the pure-Go backend (batch 8: 14.1 s; it is
// slower per image at the larger batch). The plain-resize model takes about 0.55 of that on ONNX
// Runtime (9.9 s at batch 64). Lean (-lean, recomputing) took 32.9 s at batch 64, each operation on
// one thread, so more cores do not shorten it.
const (
	goSecondsPerImage       = 183.0 / 64
	onnxSecondsPerImage     = 18.1 / 64
	onnxLeanSecondsPerImage = 32.9 / 64
)

// warnSlowSteps says, before training starts, when one step is likely to take more than 10 s (the
// tutorial's shapes on a CPU backend), with a rough estimate, so that a silent terminal is not
// mistaken for a hang and an interrupt's wait is expected.
func warnSlowSteps(stderr io.Writer, info backend.Info, cfg training.Config) {
	perImage, cores := 0.0, float64(max(1, runtime.NumCPU()))/2 // measured on 2 cores
	switch {
	case info.IsGo():
		perImage = goSecondsPerImage
	case info.IsONNX() && cfg.Lean:
		perImage, cores = onnxLeanSecondsPerImage, 1
	case info.IsONNX():
		perImage = onnxSecondsPerImage
	default:
		return
	}
	pixels := float64(cfg.Model.InputHeight*cfg.Model.InputWidth) / (300 * 300)
	est := perImage * float64(cfg.BatchSize) * pixels / cores
	if !cfg.Model.Resizer {
		est *= 0.55
	}
	if est < 10 {
		return
	}
	hint := ""
	if info.IsGo() {
		hint = " Install ONNX Runtime (scripts/install_onnxruntime.sh) for a CPU backend ~8x faster, or use a GPU."
	}
	fmt.Fprintf(stderr, "note: on this backend a training step of %d images at %dx%d will take roughly %s (from measurements on "+
		"2 cores, scaled to %d), so progress appears slowly and an interrupt waits for the step in progress.%s\n",
		cfg.BatchSize, cfg.Model.InputHeight, cfg.Model.InputWidth, time.Duration(est*float64(time.Second)).Round(time.Second),
		runtime.NumCPU(), hint)
}
