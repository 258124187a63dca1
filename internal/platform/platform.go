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
	"os"
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

// Formulation chooses how graphs write strided slices, pooling and convolutions (internal/layers):
// as the backend's Kind prefers (NativeStrided), as GoMLX's native ops wherever the backend runs
// them (the pure-Go backend and XLA), or in the portable forms everywhere.
type Formulation int

const (
	// ByKind is the backend's own choice (Kind.NativeStrided): native on XLA, portable elsewhere.
	ByKind Formulation = iota
	// Native is GoMLX's native strided ops where the backend runs them (tests check XLA's
	// formulations with it on the pure-Go backend).
	Native
	// Portable is the portable forms everywhere (for tests and comparisons on XLA).
	Portable
)

// EnvFormulation sets the process's default Formulation (read once, at the first graph that asks):
// unset or empty, ByKind; "0", Native; any other value, Portable.
const EnvFormulation = "LEARNRESIZE_PORTABLE_OPS"

var (
	defaultFormulation = sync.OnceValue(func() Formulation {
		switch os.Getenv(EnvFormulation) {
		case "":
			return ByKind
		case "0":
			return Native
		}
		return Portable
	})
	formulations sync.Map // compute.Backend -> Formulation (SetFormulation)
)

// SetFormulation makes f the formulation of every graph built on b that does not choose its own
// (internal/layers.ParamFormulation). Tests give a backend of its own each formulation they check.
func SetFormulation(b compute.Backend, f Formulation) { formulations.Store(b, f) }

// FormulationOf is b's formulation: SetFormulation's, else the process default (EnvFormulation).
func FormulationOf(b compute.Backend) Formulation {
	if f, ok := formulations.Load(b); ok {
		return f.(Formulation)
	}
	return defaultFormulation()
}

// NativeStridedWith reports whether a graph on a backend of this Kind with formulation f uses
// GoMLX's native strided ops.
func (k Kind) NativeStridedWith(f Formulation) bool {
	switch f {
	case Native:
		return k.RunsStridedGradients()
	case Portable:
		return false
	}
	return k.NativeStrided()
}
