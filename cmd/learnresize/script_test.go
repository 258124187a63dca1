package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchGPUScript runs scripts/bench_gpu.sh, the GPU session's driver, on the backend the tests
// use, with tiny shapes and without PyTorch: the parts that need only learnresize run for real and
// leave their files; a bad part name stops it before anything runs.
func TestBenchGPUScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "learnresize")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 20)
	out := filepath.Join(dir, "results")
	script, _ := filepath.Abs("../../scripts/bench_gpu.sh")
	run := func(parts ...string) (string, error) {
		cmd := exec.Command("bash", append([]string{script}, parts...)...)
		cmd.Env = append(os.Environ(), "LEARNRESIZE="+bin, "DATA="+data, "OUT="+out, "BATCH=8", "DURATION=100ms",
			"SEEDS=1", "EPOCHS=1", "PEERS="+filepath.Join(dir, "no-peers"), "PYTHON=python3",
			"BENCH_FLAGS=-inp 40 -target 32 -blocks 2,2 -growth 4 -filters 4")
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if got, err := run("info", "frobnicate"); err == nil || !strings.Contains(got, "unknown part 'frobnicate'") || strings.Contains(got, "== info") {
		t.Errorf("bad part: %v\n%s", err, got)
	}
	got, err := run("info", "bench", "epoch", "compare")
	if err != nil {
		t.Fatalf("bench_gpu.sh: %v\n%s", err, got)
	}
	if !strings.Contains(got, "backend ") || !strings.Contains(got, "graphs built: 1 train") || !strings.Contains(got, "| Learnable resizer") {
		t.Errorf("output:\n%s", got)
	}
	var rep struct {
		Backend string
		Results []struct{ Kind string }
	}
	raw, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err == nil {
		err = json.Unmarshal(raw, &rep)
	}
	if want := benchRows(rep.Backend); err != nil || len(rep.Results) != want || rep.Results[want-1].Kind != "pipeline" {
		t.Errorf("bench.json: %v %s", err, raw)
	}
	for _, f := range []string{"info.log", "bench.log", "epoch.log", "compare.log", "epoch-run/history.json", "compare/comparison.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	// The peer parts need the peers' scripts and say so.
	if got, err := run("peer"); err == nil || !strings.Contains(got, "torch_resizer.py not found") {
		t.Errorf("peer without peers: %v\n%s", err, got)
	}
}
