// Package ortlib finds ONNX Runtime's shared library, which GoMLX's compute-onnx backend loads at
// start (it is not linked), and names the GoMLX configuration that runs it on the CPU.
package ortlib

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
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
