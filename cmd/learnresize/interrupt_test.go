package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/training"
)

// envRunMain makes the test binary run the command line it holds (fields separated by \x1f) instead
// of the tests, so that a test can signal a real learnresize process.
const envRunMain = "LEARNRESIZE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if args := os.Getenv(envRunMain); args != "" {
		testStepDelay, _ = time.ParseDuration(os.Getenv(envRunMain + "_STEP_DELAY"))
		os.Exit(run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startTraining starts `learnresize train` on tiny shapes for many epochs in a child process and
// returns it once its stderr shows the line want after the second epoch began (a checkpoint
// exists), with the lines so far and a channel closed when stderr ends. Receive from that channel
// before calling cmd.Wait: Wait closes the pipe, and what the reader had not read yet is lost.
func startTraining(t *testing.T, out string, stepDelay time.Duration, want string) (*exec.Cmd, *strings.Builder, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 8)
	args := append([]string{"train", "-baseline", "-data", data, "-data-dir", filepath.Join(dir, "cache"), "-out", out, "-epochs", "500"}, tinyFlags...)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envRunMain+"="+strings.Join(args, "\x1f"), envRunMain+"_STEP_DELAY="+stepDelay.String(), "GOMLX_BACKEND=go")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var mu sync.Mutex
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		second, seen := false, false
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			second = second || strings.Contains(sc.Text(), "Epoch 2/")
			if second && !seen && strings.Contains(sc.Text(), want) {
				seen = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("training ended before %q in its second epoch:\n%s", want, log.String())
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("no %q in the second epoch in 2 minutes:\n%s", want, log.String())
	}
	return cmd, &log, done
}

// TestInterruptStopsAfterTheStep: the first SIGINT stops training after the step in progress, says
// so, exits 130 and says how to continue; the completed epochs' checkpoint is intact.
func TestInterruptStopsAfterTheStep(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send")
	}
	out := filepath.Join(t.TempDir(), "run")
	cmd, log, done := startTraining(t, out, 0, "Epoch 2/")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// stderr to its end first: Wait closes the pipe once the process has exited, and lines still
	// unread then are lost (the last line, the one that says how to continue, went missing in CI).
	<-done
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit status %d (%v), want %d\n%s", code, err, exitInterrupted, log)
	}
	for _, want := range []string{"stops after the step in progress (the last one took", "Interrupt again to exit at once",
		"interrupted; to continue: run the same command again with -resume (-out " + out + ")"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
	h, err := training.LoadHistory(out)
	if err != nil || len(h.Epochs) < 1 {
		t.Errorf("history after the interrupt: %v, %v", h, err)
	}
	if _, err := training.LatestCheckpoint(out); err != nil {
		t.Errorf("checkpoint after the interrupt: %v", err)
	}
}

// TestSecondInterruptExitsAtOnce: a second SIGINT does not wait for the step in progress (each step
// made 3 s longer here; the signals come once the epoch's first step is in that delay).
func TestSecondInterruptExitsAtOnce(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send")
	}
	out := filepath.Join(t.TempDir(), "run")
	cmd, log, done := startTraining(t, out, 3*time.Second, testStepDelayLine)
	_ = cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	<-done // before Wait, which closes the pipe (see TestInterruptStopsAfterTheStep)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(log.String(), "exiting at once") {
		t.Errorf("exit status %d, want %d with 'exiting at once':\n%s", code, exitInterrupted, log)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the second interrupt took %s to end the process", d)
	}
	if _, err := training.LatestCheckpoint(out); err != nil {
		t.Errorf("checkpoint after two interrupts: %v", err)
	}
}

func TestWarnSlowSteps(t *testing.T) {
	cfg := training.Default()
	var w strings.Builder
	warnSlowSteps(&w, backend.Info{Name: "go"}, cfg)
	if !strings.Contains(w.String(), "training step of 64 images at 300x300 will take roughly") ||
		!strings.Contains(w.String(), "install_onnxruntime.sh") {
		t.Errorf("go backend, tutorial shapes: %q", w.String())
	}
	// Lean runs each operation on one thread: its estimate does not shrink with more cores.
	w.Reset()
	lean := cfg
	lean.Lean = true
	warnSlowSteps(&w, backend.Info{Name: "onnx"}, lean)
	if !strings.Contains(w.String(), "will take roughly 33s") {
		t.Errorf("onnx, lean, tutorial shapes: %q", w.String())
	}
	w.Reset()
	cfg.Model.InputHeight, cfg.Model.InputWidth, cfg.BatchSize = 40, 40, 8
	warnSlowSteps(&w, backend.Info{Name: "go"}, cfg)
	warnSlowSteps(&w, backend.Info{Name: "xla"}, training.Default())
	if w.Len() != 0 {
		t.Errorf("small shapes or a GPU backend: %q, want nothing", w.String())
	}
}
