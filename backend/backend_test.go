package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"

	"github.com/learnresize/learnresize/internal/backendtest"
)

func TestExplicitGoBackend(t *testing.T) {
	t.Setenv(EnvBackend, "go")
	b, info, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if !info.IsGo() || info.Config != GoConfig || !strings.Contains(info.String(), "set by GOMLX_BACKEND") {
		t.Errorf("info = %+v (%s)", info, info)
	}
}

// Options after "go:" are the user's: none is added.
func TestGoBackendOptionsAsGiven(t *testing.T) {
	t.Setenv(EnvBackend, "go:ops_parallel")
	b, info, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if !info.IsGo() || info.Config != "go:ops_parallel" {
		t.Errorf("info = %+v (%s), want the configuration as given", info, info)
	}
	t.Setenv(EnvBackend, "go:no_such_option")
	if _, _, err := New(); err == nil || !strings.Contains(err.Error(), `"go:no_such_option"`) {
		t.Errorf("unknown option: error = %v, want one naming the configuration", err)
	}
}

func TestAskedForBackendThatCannotStartIsAnError(t *testing.T) {
	t.Setenv(EnvBackend, "nosuchbackend")
	if _, _, err := New(); err == nil || !strings.Contains(err.Error(), "nosuchbackend") || !strings.Contains(err.Error(), "asked for") {
		t.Errorf("error = %v, want one naming the backend the user asked for", err)
	}
}

func TestPluginEnvErrors(t *testing.T) {
	t.Setenv(EnvBackend, "")
	t.Setenv(EnvPlugin, filepath.Join(t.TempDir(), "missing.so"))
	if _, _, err := New(); err == nil || !strings.Contains(err.Error(), EnvPlugin) {
		t.Errorf("missing plugin: error = %v, want one naming %s", err, EnvPlugin)
	}
	bogus := filepath.Join(t.TempDir(), "bogus.so")
	if err := os.WriteFile(bogus, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPlugin, bogus)
	if _, _, err := New(); err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("bogus plugin: error = %v, want 'cannot start'", err)
	}
}

// On a machine with an NVIDIA GPU and a CUDA PJRT plugin (go-xla's, or a Python JAX install's), New
// picks XLA on the GPU by itself and its report names the GPU and where the plugin came from. It
// skips elsewhere; the GPU runs (scripts/gpu_session.sh) run it with no backend variable set.
func TestDefaultPicksGPU(t *testing.T) {
	if !HasNVIDIAGPU() {
		t.Skip("no NVIDIA GPU on this machine")
	}
	t.Setenv(EnvBackend, "")
	t.Setenv(EnvPlugin, "")
	cache := filepath.Join(t.TempDir(), "autotune")
	t.Setenv(EnvAutotuneCache, cache)
	t.Setenv("XLA_FLAGS", os.Getenv("XLA_FLAGS")) // restored after the test: New adds the cache flag
	b, info, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	t.Log(info)
	if info.Name != "xla" || !strings.Contains(info.Reason, "NVIDIA GPU found") || strings.Contains(strings.ToLower(info.Device), "cpu") {
		t.Errorf("info = %s, want XLA on the NVIDIA GPU", info)
	}
	if !strings.Contains(info.Reason, "XLA autotuning cached in "+cache) {
		t.Errorf("info = %s, want it to name the autotune cache %s", info, cache)
	}
	// XLA reads the flag when it compiles (and aborts on flags it does not know): a matmul, which XLA
	// autotunes on a GPU, compiles and runs with it.
	got := graph.MustExecOnce(b, func(x *graph.Node) *graph.Node { return graph.Dot(x, x).Product() },
		[][]float32{{1, 2}, {3, 4}})
	if want := [][]float32{{7, 10}, {15, 22}}; fmt.Sprint(got.Value()) != fmt.Sprint(want) {
		t.Errorf("x·x = %v, want %v", got.Value(), want)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*", "*"))
	t.Logf("autotune cache: %d files", len(files))
}

// Without a GPU and without an ONNX Runtime library, the pure-Go backend runs and says why.
func TestDefaultWithoutGPU(t *testing.T) {
	if HasNVIDIAGPU() {
		t.Skip("this machine has an NVIDIA GPU: the default is XLA there")
	}
	t.Setenv(EnvBackend, "")
	t.Setenv(EnvPlugin, "")
	t.Setenv(EnvONNXRuntime, "")
	t.Setenv("HOME", t.TempDir()) // hides ~/.local/lib/onnxruntime
	if lib, _ := FindONNXRuntime(); lib != "" {
		t.Skipf("an ONNX Runtime library is installed system-wide (%s): the default is ONNX Runtime here", lib)
	}
	b, info, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if !info.IsGo() || info.Config != GoConfig || !strings.Contains(info.Reason, "no NVIDIA GPU") || !strings.Contains(info.Reason, "no ONNX Runtime library") {
		t.Errorf("info = %s, want the go backend because neither a GPU nor ONNX Runtime was found", info)
	}
}

// With an ONNX Runtime library installed (scripts/install_onnxruntime.sh) or named by
// ONNXRUNTIME_SHARED_LIBRARY_PATH, New picks ONNX Runtime on the CPU and says where the library came
// from. CI installs it and sets LEARNRESIZE_REQUIRE_ONNX=1, so there this test cannot skip.
func TestDefaultPicksONNXRuntime(t *testing.T) {
	if HasNVIDIAGPU() {
		t.Skip("this machine has an NVIDIA GPU: the default is XLA there")
	}
	t.Setenv(EnvBackend, "")
	t.Setenv(EnvPlugin, "")
	lib, source := FindONNXRuntime()
	if lib == "" {
		if os.Getenv("LEARNRESIZE_REQUIRE_ONNX") != "" {
			t.Fatal("LEARNRESIZE_REQUIRE_ONNX is set but no ONNX Runtime library was found")
		}
		t.Skip("no ONNX Runtime library installed (scripts/install_onnxruntime.sh)")
	}
	b, info, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if !info.IsONNX() || info.Config != ONNXConfig(lib) || !strings.Contains(info.Reason, source) ||
		!strings.Contains(info.Device, "CPU") {
		t.Errorf("info = %s, want ONNX Runtime on the CPU from %s (%s)", info, lib, source)
	}
	t.Log(info)
}

func TestONNXRuntimeEnvErrors(t *testing.T) {
	if HasNVIDIAGPU() {
		t.Skip("this machine has an NVIDIA GPU: XLA comes first there")
	}
	t.Setenv(EnvBackend, "")
	t.Setenv(EnvPlugin, "")
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	t.Setenv(EnvONNXRuntime, missing)
	if _, _, err := New(); err == nil || !strings.Contains(err.Error(), EnvONNXRuntime) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing library: error = %v, want one naming %s", err, EnvONNXRuntime)
	}
	if lib, _ := FindONNXRuntime(); lib != "" {
		t.Errorf("FindONNXRuntime() = %q although %s names a missing file", lib, EnvONNXRuntime)
	}
}

func TestFindJAXCUDAPlugins(t *testing.T) {
	venv := t.TempDir()
	p := filepath.Join(venv, "lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIRTUAL_ENV", venv)
	found := FindJAXCUDAPlugins()
	ok := false
	for _, f := range found {
		ok = ok || f == p
	}
	if !ok {
		t.Errorf("FindJAXCUDAPlugins() = %v, want it to include %s", found, p)
	}
}

// The CUDA data dir of a pip-installed JAX is added to XLA_FLAGS without dropping the user's own
// flags, and never replaces a data dir the user chose.
func TestPrepareCUDAEnv(t *testing.T) {
	sp := filepath.Join(t.TempDir(), "site-packages")
	plugin := filepath.Join(sp, "jax_plugins", "xla_cuda13", "xla_cuda_plugin.so")
	if err := os.MkdirAll(filepath.Join(sp, "nvidia"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ before, want string }{
		{"", "--xla_gpu_cuda_data_dir=" + filepath.Join(sp, "nvidia")},
		{"--xla_dump_to=/tmp/d", "--xla_gpu_cuda_data_dir=" + filepath.Join(sp, "nvidia") + " --xla_dump_to=/tmp/d"},
		{"--xla_gpu_cuda_data_dir=/usr/local/cuda", "--xla_gpu_cuda_data_dir=/usr/local/cuda"},
	} {
		t.Setenv("XLA_FLAGS", c.before)
		t.Setenv("GOPJRT_CUDA_CHECKS", "")
		prepareCUDAEnv(plugin)
		if got := os.Getenv("XLA_FLAGS"); got != c.want {
			t.Errorf("XLA_FLAGS %q became %q, want %q", c.before, got, c.want)
		}
		if os.Getenv("GOPJRT_CUDA_CHECKS") != "0" {
			t.Error("GOPJRT_CUDA_CHECKS not set")
		}
	}
}

// The autotune cache goes to the user's cache folder unless the user named one in XLA_FLAGS or
// LEARNRESIZE_XLA_AUTOTUNE_CACHE, or turned it off; no cache folder, no flag.
func TestAutotuneCacheDir(t *testing.T) {
	home := func() (string, error) { return "/home/me/.cache", nil }
	none := func() (string, error) { return "", errors.New("$HOME is not defined") }
	for _, c := range []struct {
		flags, env string
		cache      func() (string, error)
		want       string
	}{
		{"", "", home, "/home/me/.cache/learnresize/xla-autotune"},
		{"--xla_gpu_cuda_data_dir=/x", "", home, "/home/me/.cache/learnresize/xla-autotune"},
		{"", "/data/tune", home, "/data/tune"},
		{"", "off", home, ""},
		{"", "OFF", home, ""},
		{AutotuneCacheFlag + "=/mine", "/data/tune", home, ""},
		{"", "", none, ""},
		{"", "/data/tune", none, "/data/tune"},
	} {
		if got := autotuneCacheDir(c.flags, c.env, c.cache); got != c.want {
			t.Errorf("autotuneCacheDir(%q, %q) = %q, want %q", c.flags, c.env, got, c.want)
		}
	}
}

// prepareAutotuneCache appends the flag after the user's own and creates the folder; the report
// reads the folder back from XLA_FLAGS.
func TestPrepareAutotuneCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tune")
	t.Setenv(EnvAutotuneCache, dir)
	t.Setenv("XLA_FLAGS", "--xla_dump_to=/tmp/d")
	prepareAutotuneCache()
	if got, want := os.Getenv("XLA_FLAGS"), "--xla_dump_to=/tmp/d "+AutotuneCacheFlag+"="+dir; got != want {
		t.Errorf("XLA_FLAGS = %q, want %q", got, want)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("cache folder not created: %v", err)
	}
	if got := autotuneCacheInUse(); got != dir {
		t.Errorf("autotuneCacheInUse() = %q, want %q", got, dir)
	}
	prepareAutotuneCache() // a second backend in the same process adds nothing
	if n := strings.Count(os.Getenv("XLA_FLAGS"), AutotuneCacheFlag); n != 1 {
		t.Errorf("XLA_FLAGS has the flag %d times: %q", n, os.Getenv("XLA_FLAGS"))
	}
	t.Setenv("XLA_FLAGS", "")
	t.Setenv(EnvAutotuneCache, "off")
	prepareAutotuneCache()
	if got := os.Getenv("XLA_FLAGS"); got != "" {
		t.Errorf("with %s=off, XLA_FLAGS = %q", EnvAutotuneCache, got)
	}
}

func TestNVIDIAModels(t *testing.T) {
	dir := t.TempDir()
	for i, model := range []string{"NVIDIA H200", "NVIDIA H100 80GB HBM3"} {
		gpu := filepath.Join(dir, fmt.Sprintf("0000:00:0%d.0", i+6))
		if err := os.MkdirAll(gpu, 0o755); err != nil {
			t.Fatal(err)
		}
		info := "Model: \t\t " + model + "\nIRQ:   \t\t 35\nGPU UUID: \t GPU-0\n"
		if err := os.WriteFile(filepath.Join(gpu, "information"), []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := nvidiaModels(dir); strings.Join(got, "|") != "NVIDIA H200|NVIDIA H100 80GB HBM3" {
		t.Errorf("nvidiaModels = %q", got)
	}
	if got := nvidiaModels(filepath.Join(dir, "missing")); len(got) != 0 {
		t.Errorf("nvidiaModels(missing) = %q, want none", got)
	}
}

// The tests' pure-Go backend (internal/backendtest) is configured as users get it.
func TestBackendtestGoConfig(t *testing.T) {
	if backendtest.GoConfig != GoConfig {
		t.Errorf("backendtest.GoConfig %q, backend.GoConfig %q", backendtest.GoConfig, GoConfig)
	}
}
