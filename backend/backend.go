// Package backend picks the GoMLX compute backend for every learnresize entry point (command line,
// notebooks, tests and benchmarks), so that they all agree on what runs where.
//
// The rule, in order:
//
//  1. GOMLX_BACKEND, when set, is used as given (for example "go", "xla:cpu", "xla:cuda" or
//     "xla:/abs/path/xla_cuda_plugin.so"). If it cannot start, New returns the error: a backend the
//     user asked for is never silently replaced.
//  2. LEARNRESIZE_PJRT_PLUGIN, when set, names a PJRT plugin file (.so) that XLA loads by absolute
//     path; failure is an error too.
//  3. When an NVIDIA GPU is present, XLA with a CUDA PJRT plugin: one installed by go-xla
//     (~/.local/lib/go-xla, /usr/local/lib/go-xla), else one shipped inside a Python JAX install
//     (jax_plugins/xla_cuda*/xla_cuda_plugin.so under common site-packages folders), else go-xla's
//     auto-install (needs the internet). If none starts, the pure-Go backend runs and the report
//     says why.
//  4. Otherwise (no GPU, or no GPU backend started), ONNX Runtime on the CPU when its library is
//     found (see [FindONNXRuntime]): GoMLX's compute-onnx backend, "onnx:cpu,<library>", the fast
//     CPU path (10-30x the pure-Go backend on convolutions). The learnresize models choose
//     formulations whose gradients it computes correctly (internal/layers; checked against PyTorch in
//     training/parity_test.go and photo_parity_test.go). A library named by
//     ONNXRUNTIME_SHARED_LIBRARY_PATH that cannot start is an error; one found on disk that cannot
//     start gives way to the pure-Go backend, and the report says why.
//  5. Otherwise the pure-Go backend ("go"), which needs no downloads and runs everywhere.
//
// The pure-Go backend runs as "go:ops_sequential" ([GoConfig]) when picked by rule 5 or named as a
// plain GOMLX_BACKEND=go; any option after "go:" (for example "go:ops_parallel") is used as given.
//
// XLA on a GPU gets an on-disk cache of its autotuning results ([AutotuneCacheFlag],
// [EnvAutotuneCache]), which the report line names.
//
// New returns the backend and an [Info] whose String method is the one-line report entry points
// print ("backend go [go:ops_sequential] on CPU, 2 cores (default; no NVIDIA GPU found; ...)").
package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute-onnx"      // ONNX Runtime, "onnx" (the library is loaded at start, not linked).
	_ "github.com/gomlx/compute/gobackend" // the pure-Go backend, "go".
	_ "github.com/gomlx/go-xla/compute/xla"
	_ "github.com/gomlx/go-xla/compute/xla/autoinstall" // lets "xla:cuda" install its plugin where online.

	"github.com/learnresize/learnresize/internal/ortlib"
	"github.com/learnresize/learnresize/internal/platform"
)

const (
	// EnvBackend is GoMLX's own variable naming the backend configuration (see compute.ConfigEnvVar).
	EnvBackend = compute.ConfigEnvVar
	// EnvPlugin names a PJRT plugin file (for example a JAX xla_cuda_plugin.so) for XLA to load.
	EnvPlugin = "LEARNRESIZE_PJRT_PLUGIN"
	// EnvONNXRuntime is compute-onnx's variable naming the ONNX Runtime shared library to load.
	EnvONNXRuntime = ortlib.EnvLibrary
	// EnvAutotuneCache names the folder where XLA on a GPU keeps its autotuning results between
	// processes, or "off" for none (see [AutotuneCacheFlag]). Default: learnresize/xla-autotune under
	// the user's cache folder (~/.cache, a volume in docker/compose.yaml).
	EnvAutotuneCache = "LEARNRESIZE_XLA_AUTOTUNE_CACHE"
)

// AutotuneCacheFlag is XLA's flag for an on-disk cache of GPU autotuning results (which convolution
// algorithm, which fusion tiling is fastest for each shape). Compiling the tutorial's training step
// on an H100 took 56 s with a cold cache and 31 s with a warm one, for the same step time (44-45 ms):
// XLA times the candidates of every convolution on the GPU while it compiles. Autotuning cannot just
// be turned off: with --xla_gpu_autotune_level=0 the compile took 35 s and the step 1.8 s, 40 times
// slower (docs/BENCHMARKS.md). New sets it for XLA on a GPU unless XLA_FLAGS already names it or
// [EnvAutotuneCache] is "off". XLA keys each result by the GPU's description, the fusion's HLO and
// a version it bumps whenever results may change (Triton upgrades included), so one folder can
// serve several GPU models and plugin versions.
const AutotuneCacheFlag = "--xla_gpu_per_fusion_autotune_cache_dir"

// GoConfig is the pure-Go backend's configuration here. GoMLX's default runs independent graph
// nodes concurrently, each taking part of the worker pool when it starts; "ops_sequential" runs one
// node at a time with every core. A matrix multiplication that starts beside a small node keeps its
// share for its whole run, so concurrency costs more than it gains on a training step: on 2 cores
// the tutorial's step (DenseNet-121 + resizer, batch 8, 300 -> 150) took 28.1 s with GoMLX's default
// and 19.8 s with ops_sequential, its profile having averaged 1.2 busy cores (docs/BENCHMARKS.md).
const GoConfig = "go:ops_sequential"

// Backend is GoMLX's compute.Backend, named here for code that picks its backend with this package
// and need not import compute (the notebook: GoNB runs "go get" for every import the notebook names).
type Backend = compute.Backend

// Info describes the backend New picked and why.
type Info struct {
	// Config is the GoMLX configuration string the backend was built from ("go", "xla:cuda", ...).
	Config string
	// Name is the registered backend name, the part of Config before ":" ("go", "xla" or "onnx").
	Name string
	// Device describes device 0 as the backend reports it.
	Device string
	// Reason says how the backend was chosen, including why a GPU was not used when one was present.
	Reason string
}

// String is the one-line report: which backend, which device, and why.
func (i Info) String() string {
	return fmt.Sprintf("backend %s [%s] on %s (%s)", i.Name, i.Config, i.Device, i.Reason)
}

// IsGo reports whether the pure-Go backend runs.
func (i Info) IsGo() bool { return i.kind() == platform.Go }

// IsONNX reports whether ONNX Runtime runs (on the CPU or, when asked for, a GPU).
func (i Info) IsONNX() bool { return i.kind() == platform.ONNX }

// kind is what the backend is (internal/platform, where the decisions that depend on it are made).
func (i Info) kind() platform.Kind {
	if i.Config == "" {
		return platform.OfConfig(i.Name)
	}
	return platform.OfConfig(i.Config)
}

// New picks, starts and describes the backend following the package rule.
// (One piece: the package rule's steps in their order, each a few lines, as the doc lists them.)
func New() (compute.Backend, Info, error) {
	if cfg, ok := os.LookupEnv(EnvBackend); ok && cfg != "" {
		reason := "set by " + EnvBackend
		if cfg == "go" {
			cfg = GoConfig
			reason += "; ops_sequential added: one op at a time on every core, GOMLX_BACKEND=go:ops_parallel for GoMLX's default"
		}
		b, err := start(cfg)
		if err != nil {
			return nil, Info{}, fmt.Errorf("backend %s=%q (asked for by the user) cannot start: %w", EnvBackend, os.Getenv(EnvBackend), err)
		}
		return b, describe(b, cfg, reason), nil
	}
	if p := os.Getenv(EnvPlugin); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, Info{}, fmt.Errorf("%s=%q: plugin file not readable: %w", EnvPlugin, p, err)
		}
		prepareCUDAEnv(p)
		cfg := "xla:" + p
		b, err := start(cfg)
		if err != nil {
			return nil, Info{}, fmt.Errorf("%s=%q (asked for by the user) cannot start: %w", EnvPlugin, p, err)
		}
		return b, describe(b, cfg, "plugin set by "+EnvPlugin), nil
	}
	var why []string
	if HasNVIDIAGPU() {
		for _, c := range cudaCandidates() {
			b, err := start(c.config)
			if err == nil {
				return b, describe(b, c.config, "NVIDIA GPU found; "+c.source), nil
			}
			why = append(why, fmt.Sprintf("%s: %v", c.config, firstLine(err)))
		}
	} else {
		why = append(why, "no NVIDIA GPU found")
	}
	lib, source := FindONNXRuntime()
	named := os.Getenv(EnvONNXRuntime) // the user named the library: failing to use it is an error
	if named != "" && lib == "" {
		return nil, Info{}, fmt.Errorf("%s=%q: no such file; point it at libonnxruntime.so or unset it", EnvONNXRuntime, named)
	}
	if lib != "" {
		cfg := ONNXConfig(lib)
		b, err := start(cfg)
		if err == nil {
			return b, describe(b, cfg, strings.Join(append(why, "ONNX Runtime library "+source), "; ")), nil
		}
		if named != "" {
			return nil, Info{}, fmt.Errorf("%s=%q (asked for by the user) cannot start: %w", EnvONNXRuntime, named, err)
		}
		why = append(why, fmt.Sprintf("ONNX Runtime %s: %v", lib, firstLine(err)))
	} else {
		why = append(why, "no ONNX Runtime library found (scripts/install_onnxruntime.sh installs it)")
	}
	b, err := start(GoConfig)
	if err != nil {
		return nil, Info{}, fmt.Errorf("the pure-Go backend cannot start: %w", err)
	}
	return b, describe(b, GoConfig, "default; "+strings.Join(why, "; ")), nil
}

// Must is New for programs and tests that cannot go on without a backend: it panics on error.
func Must() (compute.Backend, Info) {
	b, info, err := New()
	if err != nil {
		panic(err)
	}
	return b, info
}

// HasNVIDIAGPU reports whether the NVIDIA kernel driver is loaded (Linux only).
func HasNVIDIAGPU() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	for _, p := range []string{"/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// ONNXConfig is the GoMLX configuration that runs ONNX Runtime on the CPU from the library file lib.
func ONNXConfig(lib string) string { return ortlib.Config(lib) }

// FindONNXRuntime looks for ONNX Runtime's shared library and returns its path and where it was
// found, or "" when there is none: $ONNXRUNTIME_SHARED_LIBRARY_PATH (compute-onnx's own variable;
// when set, only it is considered), compute-onnx's install folder (~/.local/lib/onnxruntime, where
// scripts/install_onnxruntime.sh and compute-onnx's installer put it), then the usual library
// folders and npm's global onnxruntime-node package.
func FindONNXRuntime() (path, source string) { return ortlib.Find() }

type candidate struct{ config, source string }

// cudaCandidates lists, best first, the XLA configurations worth trying on an NVIDIA machine.
func cudaCandidates() []candidate {
	var out []candidate
	home, _ := os.UserHomeDir()
	for _, dir := range []string{filepath.Join(home, ".local/lib/go-xla"), "/usr/local/lib/go-xla"} {
		m, _ := filepath.Glob(filepath.Join(dir, "pjrt_c_api_cuda*.so"))
		nv, _ := filepath.Glob(filepath.Join(dir, "nvidia", "pjrt_c_api_cuda*.so")) // go-xla's installer layout
		if len(m)+len(nv) > 0 {
			out = append(out, candidate{"xla:cuda", "CUDA plugin installed by go-xla in " + dir})
			break
		}
	}
	for _, p := range FindJAXCUDAPlugins() {
		out = append(out, candidate{"xla:" + p, "CUDA plugin from a Python JAX install"})
	}
	out = append(out, candidate{"xla:cuda", "go-xla auto-install of the CUDA plugin"})
	return out
}

// FindJAXCUDAPlugins returns the CUDA PJRT plugins shipped by Python JAX installs in common places
// (virtual environments under /opt, $VIRTUAL_ENV, /usr/local, ~/.local), newest CUDA first.
func FindJAXCUDAPlugins() []string {
	home, _ := os.UserHomeDir()
	roots := []string{
		os.Getenv("VIRTUAL_ENV") + "/lib/python3*/site-packages",
		"/opt/*/.venv/lib/python3*/site-packages",
		"/opt/*/venv/lib/python3*/site-packages",
		"/opt/*/lib/python3*/site-packages",
		"/opt/venv/lib/python3*/site-packages",
		"/usr/local/lib/python3*/*-packages",
		"/usr/lib/python3/dist-packages",
		home + "/.local/lib/python3*/site-packages",
	}
	seen := map[string]bool{}
	var found []string
	for _, r := range roots {
		m, _ := filepath.Glob(filepath.Join(r, "jax_plugins/xla_cuda*/xla_cuda_plugin.so"))
		for _, p := range m {
			if !seen[p] {
				seen[p] = true
				found = append(found, p)
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i] > found[j] })
	return found
}

// prepareCUDAEnv points XLA at the CUDA libraries that a pip-installed JAX keeps beside its plugin
// (site-packages/nvidia), unless XLA_FLAGS already names a CUDA data dir; other XLA flags the user
// set (dumps, layout experiments) are kept.
//
// Why the process environment: the plugin's XLA reads its flags only from XLA_FLAGS when the client
// is created, and go-xla's plugin options (GOMLX_BACKEND's ",key=value" part) do not reach those
// flags. GOPJRT_CUDA_CHECKS=0 turns off go-xla's look for an nvidia/ folder beside the plugin's
// folder (its installer's layout); a JAX install keeps it one level higher, so the check would only
// print a misleading warning. Both are set only when unset, and only when XLA is started with a
// plugin file, so a user's values win.
func prepareCUDAEnv(plugin string) {
	sp := filepath.Dir(filepath.Dir(filepath.Dir(plugin))) // .../site-packages
	nv := filepath.Join(sp, "nvidia")
	flags := os.Getenv("XLA_FLAGS")
	if fi, err := os.Stat(nv); err == nil && fi.IsDir() && !strings.Contains(flags, "--xla_gpu_cuda_data_dir") {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace("--xla_gpu_cuda_data_dir="+nv+" "+flags))
	}
	if os.Getenv("GOPJRT_CUDA_CHECKS") == "" {
		_ = os.Setenv("GOPJRT_CUDA_CHECKS", "0")
	}
}

// start builds a backend from a configuration, turning GoMLX's panics (unknown backend name) into errors.
func start(cfg string) (b compute.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if strings.HasPrefix(cfg, "xla:/") {
		prepareCUDAEnv(strings.SplitN(strings.TrimPrefix(cfg, "xla:"), ",", 2)[0])
	}
	if platform.OfConfig(cfg) == platform.XLAGPU {
		prepareAutotuneCache()
	}
	return compute.NewWithConfig(cfg)
}

// prepareAutotuneCache adds [AutotuneCacheFlag] to XLA_FLAGS (see prepareCUDAEnv for why the
// environment) with the folder autotuneCacheDir chooses, creating it; a folder that cannot be
// created only costs the cache, so it is skipped silently (the report line then names no cache).
func prepareAutotuneCache() {
	flags := os.Getenv("XLA_FLAGS")
	dir := autotuneCacheDir(flags, os.Getenv(EnvAutotuneCache), os.UserCacheDir)
	if dir == "" || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(flags+" "+AutotuneCacheFlag+"="+dir))
}

// autotuneCacheDir returns the autotune cache folder to add to XLA_FLAGS, or "" for none: none when
// the flags already name one (the user's choice wins) or env is "off"; env's folder when set;
// otherwise learnresize/xla-autotune in userCache's folder.
func autotuneCacheDir(flags, env string, userCache func() (string, error)) string {
	if strings.Contains(flags, AutotuneCacheFlag) || strings.EqualFold(env, "off") {
		return ""
	}
	if env != "" {
		return env
	}
	base, err := userCache()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "learnresize", "xla-autotune")
}

// autotuneCacheInUse returns the folder XLA_FLAGS gives AutotuneCacheFlag, or "".
func autotuneCacheInUse() string {
	for _, f := range strings.Fields(os.Getenv("XLA_FLAGS")) {
		if v, ok := strings.CutPrefix(f, AutotuneCacheFlag+"="); ok {
			return v
		}
	}
	return ""
}

func describe(b compute.Backend, cfg, reason string) Info {
	dev := "unknown device"
	if b.NumDevices() > 0 {
		dev = b.DeviceDescription(0)
	}
	name, opts, _ := strings.Cut(cfg, ":")
	info := Info{Config: cfg, Name: name, Device: dev, Reason: reason}
	if info.IsGo() || info.IsONNX() && strings.HasPrefix(opts, "cpu") {
		info.Device = fmt.Sprintf("CPU, %d cores", runtime.NumCPU())
	}
	if name == "xla" && strings.HasPrefix(dev, "cuda") {
		// PJRT describes the device as "cuda:0 [processId=0]"; the report should name the GPU.
		if models := nvidiaModels("/proc/driver/nvidia/gpus"); len(models) > 0 {
			info.Device = fmt.Sprintf("%s, %s", dev, strings.Join(models, ", "))
		}
		if dir := autotuneCacheInUse(); dir != "" {
			info.Reason += "; XLA autotuning cached in " + dir
		}
	}
	return info
}

// nvidiaModels returns the model of each NVIDIA GPU the kernel driver lists under dir (one folder
// per GPU, each with an "information" file holding a "Model:" line), in folder order.
func nvidiaModels(dir string) []string {
	infos, _ := filepath.Glob(filepath.Join(dir, "*", "information"))
	sort.Strings(infos)
	var out []string
	for _, p := range infos {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Model" {
				out = append(out, strings.TrimSpace(v))
				break
			}
		}
	}
	return out
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
