// Package platform is the one place that decides, from a GoMLX compute backend, what it is and so
// which formulations the model's graphs use on it. Every such decision (native or portable strided
// ops, native or im2col convolutions, dense or banded resize, whether a memory estimate applies)
// asks a Kind here, rather than comparing backend names where the decision is made.
//
// XLA on the CPU (GOMLX_BACKEND=xla:cpu) is a Kind of its own, decided on purpose: it compiles the
// same graphs as XLA on a GPU and runs GoMLX's native ops, so it takes XLA's formulations (the ones
// XLA's tests check); its memory is the process's, but no estimate has been fitted to it, so the
// training memory check passes it as it does a GPU.
package platform

import (
	"strings"
	"sync"

	"github.com/gomlx/compute"
)

// Kind is what a backend is, for the decisions that depend on it.
type Kind int

const (
	// Other is a backend this package does not know: the portable formulations, no estimate.
	Other Kind = iota
	// Go is GoMLX's pure-Go backend (compute's gobackend).
	Go
	// ONNX is ONNX Runtime (compute-onnx).
	ONNX
	// XLACPU is XLA on the CPU (go-xla's "cpu" plugin).
	XLACPU
	// XLAGPU is XLA on a GPU (CUDA plugins).
	XLAGPU
)

// String is the Kind as a short name ("go", "onnx", "xla:cpu", "xla:gpu", "other").
func (k Kind) String() string {
	switch k {
	case Go:
		return "go"
	case ONNX:
		return "onnx"
	case XLACPU:
		return "xla:cpu"
	case XLAGPU:
		return "xla:gpu"
	}
	return "other"
}

var kinds sync.Map // compute.Backend -> Kind (asking XLA for its device takes a call into PJRT)

// Of returns the Kind of a running backend.
func Of(b compute.Backend) Kind {
	if k, ok := kinds.Load(b); ok {
		return k.(Kind)
	}
	k := ofName(b.Name(), "")
	if k == XLAGPU && onCPU(b) {
		k = XLACPU
	}
	kinds.Store(b, k)
	return k
}

// onCPU reports whether an XLA backend's plugin or device is the CPU.
func onCPU(b compute.Backend) bool {
	if p, ok := b.(interface{ PluginName() string }); ok && strings.HasPrefix(strings.ToLower(p.PluginName()), "cpu") {
		return true
	}
	return b.NumDevices() > 0 && strings.HasPrefix(strings.ToLower(b.DeviceDescription(0)), "cpu")
}

// OfConfig returns the Kind a GoMLX backend configuration string names ("go", "go:ops_sequential",
// "onnx:cpu,...", "xla:cpu", "xla:cuda", "xla:/path/to/plugin.so"), without starting it.
func OfConfig(config string) Kind {
	name, opts, _ := strings.Cut(config, ":")
	return ofName(name, opts)
}

func ofName(name, opts string) Kind {
	switch name {
	case "go", "Go Backend": // compute v0.1.14's gobackend calls itself "Go Backend"
		return Go
	case "onnx", "onnxruntime":
		return ONNX
	case "xla":
		if strings.HasPrefix(strings.ToLower(opts), "cpu") {
			return XLACPU
		}
		return XLAGPU
	}
	return Other
}

// XLA reports whether the backend is XLA, on any device.
func (k Kind) XLA() bool { return k == XLACPU || k == XLAGPU }

// RunsStridedGradients reports whether the backend runs the ops GoMLX's gradients of strided
// slices, pooling and convolutions need (interior padding, input dilation, select-and-scatter that
// adds): the pure-Go backend and XLA, not ONNX Runtime.
func (k Kind) RunsStridedGradients() bool { return k == Go || k.XLA() }

// NativeStrided reports whether graphs use GoMLX's strided ops and their gradients as GoMLX emits
// them by default: on XLA, which compiles them into fused kernels. Elsewhere the portable forms
// (internal/layers) run: ONNX Runtime lacks the ops, and the pure-Go backend runs them as generic
// loops, slower than the portable forms.
func (k Kind) NativeStrided() bool { return k.XLA() }

// NativeConvolution reports whether every convolution runs as the backend's own (cuDNN on a GPU,
// XLA's on the CPU), never as an im2col matrix product.
func (k Kind) NativeConvolution() bool { return k.XLA() }

// DenseResize reports whether the resizer's resampling runs as a dense matrix product per axis (a
// few large matmuls: fast on XLA) rather than as banded strided slices (fewer operations: faster on
// the CPU backends).
func (k Kind) DenseResize() bool { return k.XLA() }

// MemoryEstimated reports whether a training step's process memory can be estimated (training's
// memory check): on the CPU backends whose allocators were measured, ONNX Runtime and pure Go. XLA
// on a GPU holds its memory on the GPU; XLA on the CPU has not been measured.
func (k Kind) MemoryEstimated() bool { return k == Go || k == ONNX }
