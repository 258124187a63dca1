// Package ortlib finds ONNX Runtime's shared library, which GoMLX's compute-onnx backend loads at
// start (it is not linked), and names the GoMLX configuration that runs it on the CPU.
package ortlib

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/gomlx/compute"
)

// EnvLibrary is compute-onnx's own variable naming the ONNX Runtime shared library to load.
const EnvLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// Config is the GoMLX backend configuration that runs ONNX Runtime on the CPU from the library lib.
//
// Memory patterns are off: with them, ONNX Runtime pre-plans one block per session for the whole
// training graph, and the tutorial's training step (resizer + DenseNet-121, 300 -> 150) peaked at
// 21 GB at batch 16 (the train, baseline and eval sessions of learnresize bench) against 12.8 GB
// without, at the same speed; batch 64 did not fit in 24 GB. Turning the CPU arena off instead
// saved more memory (9 GB) but made the step 2.3x slower.
func Config(lib string) string { return "onnx:cpu," + lib + ",mem_pattern=false" }

// LeanConfig is Config run by ONNX Runtime's parallel executor, one thread per operation: the
// configuration whose allocation planner shares no buffers between values.
//
// In its sequential executor (Config's), ONNX Runtime's planner gives a new value the buffer of a
// dead value of exactly its shape, and a shared buffer is released only after its last value dies
// (allocation_planner.cc: FindReusableTensor, GenerateDeallocationPlan). In a training graph, a
// buffer freed in the forward pass then waits, idle, for a gradient of its shape in the backward
// pass: at the tutorial's batch 64 (activations recomputed), 10.3 GB planned where the values need
// 3.0 GB at once. The C API has no switch for that reuse (enable_mem_reuse is the Python binding's
// and the C++ session's), but the planner makes none when the session runs in parallel mode
// (IsParallelExecutionEnabled), which the C API does set: measured at batch 64, 5.78 GB against
// 13-18 GB. The price is the executor's: it runs each operation on one thread (two intra-op
// threads made it slower still on 2 cores, 4.6 s against 3.5 s at batch 8), 1.6 to 2 times the
// sequential step's time on this project's 2-core machine (docs/BENCHMARKS.md). One inter-op
// thread would make ONNX Runtime fall back to the sequential executor, so their number is left at
// its default (the cores).
func LeanConfig(lib string) string { return Config(lib) + ",parallel,intra_op_num_threads=1" }

var (
	leanOnce sync.Once
	leanBE   compute.Backend
	leanErr  error
)

// Lean returns the process's backend of LeanConfig, started on first use from the library Find
// finds (not necessarily the one a GOMLX_BACKEND naming its own library loads). Tensors move between it and the process's other backends as between any two GoMLX
// backends.
func Lean() (compute.Backend, error) {
	leanOnce.Do(func() {
		lib, _ := Find()
		if lib == "" {
			leanErr = errors.New("ONNX Runtime's library was not found for its lean configuration: set " + EnvLibrary)
			return
		}
		leanBE, leanErr = compute.NewWithConfig(LeanConfig(lib))
	})
	return leanBE, leanErr
}

// Find returns the path of ONNX Runtime's shared library and where it was found, or "" when there
// is none. In order: $ONNXRUNTIME_SHARED_LIBRARY_PATH (when set, only it is considered),
// compute-onnx's install folder (~/.local/lib/onnxruntime, where scripts/install_onnxruntime.sh and
// compute-onnx's installer put it), /usr/local/lib and the system library folders, then npm's
// global onnxruntime-node package. Linux only: elsewhere set the variable.
func Find() (path, source string) {
	if p := os.Getenv(EnvLibrary); p != "" {
		if isFile(p) {
			return p, "set by " + EnvLibrary
		}
		return "", ""
	}
	if runtime.GOOS != "linux" {
		return "", ""
	}
	home, _ := os.UserHomeDir()
	npmArch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	npmLib := "node_modules/onnxruntime-node/bin/napi-v6/linux/" + npmArch + "/libonnxruntime.so.1"
	places := []struct{ glob, source string }{
		{filepath.Join(home, ".local/lib/onnxruntime/libonnxruntime.so"), "in compute-onnx's install folder"},
		{"/usr/local/lib/onnxruntime/libonnxruntime.so", "in /usr/local/lib/onnxruntime"},
		{"/usr/local/lib/libonnxruntime.so*", "in /usr/local/lib"},
		{"/usr/lib/*-linux-gnu/libonnxruntime.so*", "in the system library folder"},
		{"/usr/lib/libonnxruntime.so*", "in /usr/lib"},
		{filepath.Join("/usr/local/lib", npmLib), "from npm's global onnxruntime-node"},
		{filepath.Join("/usr/lib", npmLib), "from npm's global onnxruntime-node"},
	}
	for _, pl := range places {
		m, _ := filepath.Glob(pl.glob)
		sort.Strings(m)
		for _, p := range m {
			if isFile(p) {
				return p, pl.source
			}
		}
	}
	return "", ""
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
