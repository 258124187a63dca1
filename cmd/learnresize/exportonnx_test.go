package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportONNX: export-onnx writes model.onnx and resizer.onnx from a run folder and says what
// they hold; it refuses to overwrite without -force (exit 1), missing flags (exit 2) and a folder
// without a run, naming the problem. (onnxexport's tests run the files in ONNX Runtime.)
func TestExportONNX(t *testing.T) {
	out := t.TempDir()
	run := filepath.Join("..", "..", "training", "testdata", "run-2026-12-01")
	code, stdout, stderr := runCLI(t, "export-onnx", "-checkpoint", run, "-out", out)
	if code != 0 || !strings.Contains(stdout, "resizer.onnx") || !strings.Contains(stdout, `output "resized" [N, 32, 32, 3]`) ||
		!strings.Contains(stdout, "model.onnx") || !strings.Contains(stdout, `input "images" uint8 [N, 64, 64, 3]`) {
		t.Fatalf("export-onnx exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"resizer.onnx", "model.onnx"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() < 1000 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	if code, _, stderr := runCLI(t, "export-onnx", "-checkpoint", run, "-out", out); code != 1 || !strings.Contains(stderr, "-force") {
		t.Errorf("second export without -force: exit %d, %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "export-onnx", "-checkpoint", run, "-out", out, "-force"); code != 0 {
		t.Errorf("-force: exit %d", code)
	}
	if code, _, stderr := runCLI(t, "export-onnx", "-out", out); code != 2 || !strings.Contains(stderr, "-checkpoint") {
		t.Errorf("no -checkpoint: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "export-onnx", "-checkpoint", t.TempDir(), "-out", t.TempDir()); code != 1 || stderr == "" {
		t.Errorf("a folder without a resizer: exit %d, %q", code, stderr)
	}
}

// TestServeRefusesBadFlags: serve listens on this machine only, and needs a run (exit 2 for flags).
func TestServeRefusesBadFlags(t *testing.T) {
	run := filepath.Join("..", "..", "training", "testdata", "run-2026-12-01")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-checkpoint", run, "-addr", "0.0.0.0:8080"}, "127.0.0.1 or localhost only"},
		{[]string{"-addr", "127.0.0.1:8080"}, "-checkpoint is required"},
		{[]string{"-checkpoint", run, "-addr", "nonsense"}, "-addr"},
	} {
		if code, _, stderr := runCLI(t, append([]string{"serve"}, c.args...)...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("serve %q: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if code, _, stderr := runCLI(t, "serve", "-checkpoint", run, "-ort", t.TempDir()); code != 1 || !strings.Contains(stderr, "npm ci") {
		t.Errorf("serve without onnxruntime-web: exit %d, %q", code, stderr)
	}
}
