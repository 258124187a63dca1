// Package bench measures what a user deciding between this port and PyTorch would measure: the
// resize op, the learnable resizer's forward and backward passes, full training steps of both
// tutorial models, an evaluation step, and the input pipeline. Timings exclude warm-up (graph
// compilation), which is reported separately; every timed call reads a result back so the device has
// finished. The table is printed by go-benchmarks; the same samples feed the JSON report.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/janpfeifer/go-benchmarks"

	"github.com/learnresize/learnresize/internal/layers"
	"github.com/learnresize/learnresize/internal/resources"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// Config selects shapes and what to run.
type Config struct {
	Model    models.Config // sizes and networks (default: the tutorial's)
	Batch    int           // batch size (tutorial: 64)
	Channels int           // channels of the resize-op benchmark (the resizer's 16 filters)
	Duration time.Duration // timed duration of each benchmark
	WarmUps  int           // untimed runs after the first (compiling) one
	Only     []string      // run only benchmarks whose name contains one of these, or whose Kind is one (empty: all)
	Backend  string        // the backend report line, for the JSON
	// Lean runs every row on ONNX Runtime without buffer sharing (training.Config.Lean), where the
	// backend is ONNX Runtime.
	Lean bool `json:"lean,omitempty"`
	// Pipeline, if set, reads one batch of Batch images from the input pipeline.
	Pipeline func() error `json:"-"`
}

// Result is one benchmark's figures.
type Result struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind"` // one of the Kind* constants
	Shape       string  `json:"shape"`
	FirstCallS  float64 `json:"first_call_s"` // includes graph building and compilation
	Runs        int     `json:"runs"`
	MeanMs      float64 `json:"mean_ms"`
	MedianMs    float64 `json:"median_ms"`
	P5Ms        float64 `json:"p5_ms"`
	P95Ms       float64 `json:"p95_ms"`
	ImagesPerS  float64 `json:"images_per_s,omitempty"`
	ImagesPerIt int     `json:"images_per_iteration,omitempty"`
	// PeakRSSBytes is the process's peak resident memory during one call after the first (the
	// first compiles; the arenas it grows are kept and counted): memory earlier rows still hold is
	// in it, so run a row alone (-only) for its own figure. 0 where unknown (off Linux).
	PeakRSSBytes uint64 `json:"peak_rss_bytes,omitempty"`
	// FirstCallPeakRSSBytes is the same during the first call (compilation included).
	FirstCallPeakRSSBytes uint64 `json:"first_call_peak_rss_bytes,omitempty"`
	// For the training steps, training.EstimateMemory's figures: the planned peak of the step's
	// values and the process estimate the up-front check uses (0 where there is none).
	PlannedValuesBytes int64 `json:"planned_values_bytes,omitempty"`
	EstimatedBytes     int64 `json:"estimated_bytes,omitempty"`
}

// Report is the JSON document Run returns.
type Report struct {
	Backend  string            `json:"backend"`
	Versions map[string]string `json:"versions"`
	GoArch   string            `json:"goarch"`
	CPUs     int               `json:"cpus"`
	Config   Config            `json:"config"`
	Date     string            `json:"date"`
	Results  []Result          `json:"results"`
	// Peer and PeerComparison are set by the caller when a PyTorch peer's output is given.
	Peer           *Peer            `json:"peer,omitempty"`
	PeerComparison []PeerComparison `json:"peer_comparison,omitempty"`
}

// JSON renders the report.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// Benchmark kinds (Result.Kind), stable names for scripts reading the JSON.
const (
	KindInterpolate   = "resize-interpolate"
	KindResize        = "resize"
	KindResizerInfer  = "resizer-forward"
	KindResizerTrain  = "resizer-forward-backward"
	KindTrainResizer  = "train-step-resizer"
	KindTrainBaseline = "train-step-baseline"
	KindEval          = "eval-step"
	KindPipeline      = "pipeline"
)

type bench struct {
	kind        string
	name, shape string
	images      int
	setup       func() (run func() error, err error)
	model       *models.Config // the training steps' model, for their memory estimate
}

// Run executes the benchmarks on b and prints their statistics to w. (A sequence: set up and time the
// first call of each benchmark, time them all with go-benchmarks, then the statistics and the table.)
func Run(b compute.Backend, cfg Config, w io.Writer) (*Report, error) {
	if cfg.Batch <= 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("bench: batch and duration must be positive")
	}
	if err := cfg.Model.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := models.CheckMemory(cfg.Model, cfg.Batch); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	lb, err := training.RunsOn(b, training.Config{Lean: cfg.Lean})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if lb != b {
		fmt.Fprintln(w, "-lean: every row runs on ONNX Runtime without buffer sharing (its parallel executor, one thread per operation)")
		b = lb
	}
	rep := &Report{Backend: cfg.Backend, Versions: versions(), GoArch: runtime.GOARCH, CPUs: runtime.NumCPU(), Config: cfg,
		Date: time.Now().UTC().Format(time.RFC3339)}
	all := benchList(b, cfg)
	var fns []benchmarks.NamedFunction
	samples := make([][]time.Duration, 0, len(all))
	errs := make([]error, 0, len(all))
	// On the pure-Go backend, the training steps run under the Go heap limit training.Fit sets, for
	// the largest of them.
	var heap training.HeapLimit
	defer heap.Release()
	for _, bn := range all {
		if len(cfg.Only) > 0 && !slices.ContainsFunc(cfg.Only, func(s string) bool { return strings.Contains(bn.name, s) || s == bn.kind }) {
			continue
		}
		var est training.MemoryEstimate
		if bn.model != nil {
			var err error
			est, err = training.EstimateMemory(b, training.Config{Model: *bn.model, BatchSize: cfg.Batch, LabelSmoothing: benchSmoothing, Lean: cfg.Lean})
			if err != nil {
				return nil, fmt.Errorf("bench %q: %w", bn.name, err)
			}
			heap.Raise(b, est.Values)
		}
		run, err := bn.setup()
		if err != nil {
			return nil, fmt.Errorf("bench %q: %w", bn.name, err)
		}
		_ = resources.ResetPeakRSS()
		t0 := time.Now()
		if err := run(); err != nil {
			return nil, fmt.Errorf("bench %q: %w", bn.name, err)
		}
		first := time.Since(t0)
		firstPeak, _ := resources.PeakRSS()
		peak, err := peakOfCall(run)
		if err != nil {
			return nil, fmt.Errorf("bench %q: %w", bn.name, err)
		}
		res := Result{Name: bn.name, Kind: bn.kind, Shape: bn.shape, FirstCallS: first.Seconds(), ImagesPerIt: bn.images,
			PeakRSSBytes: peak, FirstCallPeakRSSBytes: firstPeak}
		estimate := ""
		if bn.model != nil {
			res.PlannedValuesBytes, res.EstimatedBytes = est.Values, est.Process
			estimate = fmt.Sprintf("; values %s, estimate %s", rssString(uint64(est.Values)), rssString(uint64(est.Process)))
		}
		fmt.Fprintf(w, "%-58s first call (build+compile+run) %s, peak memory %s (first call %s%s)\n", bn.name,
			first.Round(time.Millisecond), rssString(peak), rssString(firstPeak), estimate)
		idx := len(samples)
		samples = append(samples, nil)
		errs = append(errs, nil)
		fns = append(fns, benchmarks.NamedFunction{Name: bn.name, Func: func() {
			s := time.Now()
			if err := run(); err != nil && errs[idx] == nil {
				errs[idx] = err
			}
			samples[idx] = append(samples[idx], time.Since(s))
		}})
		rep.Results = append(rep.Results, res)
	}
	// go-benchmarks runs the warm-ups and the timed calls; its own table (approximate quantiles, a
	// 99th percentile) is not printed: the statistics reported are the exact ones of the recorded
	// samples below, one set for the table, the command's lines and the JSON.
	quiet(func() { benchmarks.New(fns...).WithWarmUps(cfg.WarmUps).WithDuration(cfg.Duration).Done() })
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench %q: %w", rep.Results[i].Name, err)
		}
	}
	for i := range rep.Results {
		s := samples[i]
		if len(s) > cfg.WarmUps {
			s = s[cfg.WarmUps:] // the go-benchmarks warm-ups are not timed there either
		}
		rep.Results[i].setStatistics(s)
	}
	fmt.Fprintf(w, "%-58s %10s %10s %10s %10s %7s %11s\n", "benchmark", "mean", "median", "5%", "95%", "runs", "peak memory")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-58s %10s %10s %10s %10s %7d %11s\n", r.Name, ms(r.MeanMs), ms(r.MedianMs), ms(r.P5Ms), ms(r.P95Ms), r.Runs, rssString(r.PeakRSSBytes))
	}
	return rep, nil
}

// peakOfCall runs one untimed call of run and returns the process's peak resident memory during it
// (0 where unknown).
func peakOfCall(run func() error) (uint64, error) {
	_ = resources.ResetPeakRSS()
	if err := run(); err != nil {
		return 0, err
	}
	peak, _ := resources.PeakRSS()
	return peak, nil
}

// rssString formats a peak for the command's lines ("unknown" off Linux).
func rssString(b uint64) string {
	if b == 0 {
		return "unknown"
	}
	return resources.Size(b)
}

// benchList is every benchmark this backend runs, in the table's order (graph.Interpolate's
// gradient needs ops ONNX Runtime lacks, so that row is for the go and XLA backends).
func benchList(b compute.Backend, cfg Config) []bench {
	m := cfg.Model
	inH, inW, tH, tW, B := m.InputHeight, m.InputWidth, m.TargetHeight, m.TargetWidth, cfg.Batch
	withResizer, baseline := m, m.Baseline() // the training steps' two models
	withResizer.Resizer = true
	all := []bench{
		{KindInterpolate, fmt.Sprintf("resize fwd+bwd, graph.Interpolate %s", m.Interpolation), fmt.Sprintf("[%d,%d,%d,%d]->%dx%d", B, inH, inW, cfg.Channels, tH, tW), 0,
			resizeBench(b, cfg, func(x *Node) *Node { return Interpolate(x, -1, tH, tW, -1).Bilinear().Done() }), nil},
		{KindResize, fmt.Sprintf("resize fwd+bwd, resizer.Resize %s", m.Interpolation), fmt.Sprintf("[%d,%d,%d,%d]->%dx%d", B, inH, inW, cfg.Channels, tH, tW), 0,
			resizeBench(b, cfg, func(x *Node) *Node { return resizer.Resize(x, tH, tW, m.Interpolation) }), nil},
		{KindResizerInfer, "resizer forward (inference)", fmt.Sprintf("[%d,%d,%d,3]->%dx%d", B, inH, inW, tH, tW), B, resizerBench(b, cfg, false), nil},
		{KindResizerTrain, "resizer forward+backward (training)", fmt.Sprintf("[%d,%d,%d,3]->%dx%d", B, inH, inW, tH, tW), B, resizerBench(b, cfg, true), nil},
		{KindTrainResizer, "train step, " + m.Title(), fmt.Sprintf("batch %d, %dx%d->%dx%d", B, inH, inW, tH, tW), B, trainBench(b, cfg, withResizer), &withResizer},
		{KindTrainBaseline, "train step, " + m.Baseline().Title(), fmt.Sprintf("batch %d, %dx%d->%dx%d", B, inH, inW, tH, tW), B, trainBench(b, cfg, baseline), &baseline},
		{KindEval, "eval step, " + m.Title(), fmt.Sprintf("batch %d", B), B, evalBench(b, cfg), nil},
	}
	if cfg.Pipeline != nil {
		all = append(all, bench{KindPipeline, "input pipeline from cache", fmt.Sprintf("batch %d, %dx%d uint8", B, inH, inW), B, func() (func() error, error) {
			return cfg.Pipeline, nil
		}, nil})
	}
	if !layers.RunsStridedGradients(b) {
		// graph.Interpolate's gradient needs ops this backend lacks (interior padding, scatter-add);
		// the comparison with it is for the backends that run it.
		all = slices.DeleteFunc(all, func(bn bench) bool { return bn.kind == KindInterpolate })
	}
	return all
}

// setStatistics fills r's runs, mean, median, 5th and 95th percentiles and throughput from the
// timed samples s (exact, not estimated).
func (r *Result) setStatistics(s []time.Duration) {
	r.Runs = len(s)
	if len(s) == 0 {
		return
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	var total time.Duration
	for _, d := range s {
		total += d
	}
	toMs := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.MeanMs = toMs(total / time.Duration(len(s)))
	r.MedianMs = toMs(sorted[len(sorted)/2])
	r.P5Ms = toMs(sorted[len(sorted)*5/100])
	r.P95Ms = toMs(sorted[min(len(sorted)-1, len(sorted)*95/100)])
	if r.ImagesPerIt > 0 {
		r.ImagesPerS = float64(r.ImagesPerIt) / (r.MeanMs / 1000)
	}
}

// quiet runs f with the process's standard output discarded (go-benchmarks prints its table there).
func quiet(f func()) {
	saved := os.Stdout
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		os.Stdout = null
		defer func() { os.Stdout = saved; _ = null.Close() }()
	}
	f()
}

// ms formats milliseconds for the table.
func ms(v float64) string { return fmt.Sprintf("%.2f ms", v) }

func versions() map[string]string {
	out := map[string]string{"go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/gomlx/gomlx", "github.com/gomlx/go-xla", "github.com/gomlx/compute", "github.com/gomlx/compute-onnx":
				out[d.Path] = d.Version
			}
		}
	}
	return out
}

func randomTensor(dtype dtypes.DType, dims ...int) *tensors.Tensor {
	t := tensors.FromShape(shapes.Make(dtype, dims...))
	r := rand.New(rand.NewPCG(1, 2))
	switch dtype {
	case dtypes.Float32:
		tensors.MustMutableFlatData[float32](t, func(f []float32) {
			for i := range f {
				f[i] = r.Float32()
			}
		})
	case dtypes.Uint8:
		tensors.MustMutableFlatData[uint8](t, func(f []uint8) {
			for i := range f {
				f[i] = uint8(r.IntN(256))
			}
		})
	}
	return t
}

func readScalar(t *tensors.Tensor) { _ = t.Value() }

// timed returns one benchmark iteration: execute with args and read the first (scalar) result back,
// so the device has finished.
func timed(exec func(args ...any) ([]*tensors.Tensor, error), args ...any) func() error {
	return func() error {
		out, err := exec(args...)
		if err != nil {
			return err
		}
		readScalar(out[0])
		return nil
	}
}

func resizeBench(b compute.Backend, cfg Config, op func(x *Node) *Node) func() (func() error, error) {
	return func() (func() error, error) {
		m := cfg.Model
		x := randomTensor(dtypes.Float32, cfg.Batch, m.InputHeight, m.InputWidth, cfg.Channels)
		exec, err := NewExec(b, func(x *Node) *Node {
			loss := ReduceAllSum(Square(op(x)))
			return ReduceAllSum(Gradient(loss, x)[0])
		})
		if err != nil {
			return nil, err
		}
		return timed(exec.Exec, x), nil
	}
}

func resizerBench(b compute.Backend, cfg Config, backward bool) func() (func() error, error) {
	return func() (func() error, error) {
		m := cfg.Model
		x := randomTensor(dtypes.Float32, cfg.Batch, m.InputHeight, m.InputWidth, 3)
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(1))
		rc := m.ResizerConfig()
		exec, err := model.NewExec(b, store, func(scope *model.Scope, x *Node) *Node {
			g := x.Graph()
			scope.Store().SetTraining(g, backward)
			y := resizer.New(scope, x).Target(rc.TargetHeight, rc.TargetWidth).Filters(rc.Filters).
				ResBlocks(rc.ResBlocks).Interpolation(rc.Interpolation).Done()
			if !backward {
				return ReduceAllSum(y)
			}
			loss := ReduceAllSum(Square(y))
			var nodes []*Node
			for v := range scope.IterVariables() {
				if v.Trainable {
					nodes = append(nodes, v.NodeValue(g))
				}
			}
			total := ReduceAllSum(Gradient(loss, x)[0])
			for _, gr := range Gradient(loss, nodes...) {
				total = Add(total, ReduceAllSum(gr))
			}
			return total
		})
		if err != nil {
			return nil, err
		}
		return timed(exec.Exec, x), nil
	}
}

func batchTensors(cfg Config) (*tensors.Tensor, *tensors.Tensor) {
	m := cfg.Model
	x := randomTensor(dtypes.Uint8, cfg.Batch, m.InputHeight, m.InputWidth, 3)
	labels := make([]float32, cfg.Batch*m.Classes)
	for i := range cfg.Batch {
		labels[i*m.Classes+i%m.Classes] = 1
	}
	return x, tensors.FromFlatDataAndDimensions(labels, cfg.Batch, m.Classes)
}

// benchSmoothing is the training steps' label smoothing (the tutorial's).
const benchSmoothing = 0.1

func trainBench(b compute.Backend, cfg Config, mc models.Config) func() (func() error, error) {
	return func() (func() error, error) {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(1))
		trainer := train.NewTrainer(b, store, models.ModelFn(mc), training.LossFn(benchSmoothing),
			optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.01).Done(), nil, nil)
		// Host-side batch built once; each step gets fresh tensors (the trainer takes ownership and
		// donates them). As in training.Fit, the next batch's tensors are created and copied to the
		// device in a goroutine while the current step runs, so the figure is the step as the training
		// loop sees it, like the PyTorch peer's, whose batch already sits on the GPU.
		x, y := batchTensors(cfg)
		xs, ys := tensors.MustCopyFlatData[uint8](x), tensors.MustCopyFlatData[float32](y)
		xd, yd := x.Shape().Dimensions, y.Shape().Dimensions
		type prepared struct {
			batch train.Batch
			err   error
		}
		pending := make(chan prepared, 1)
		prepare := func() {
			batch := train.Batch{Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(xs, xd...)},
				Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(ys, yd...)}}
			var err error
			for _, t := range []*tensors.Tensor{batch.Inputs[0], batch.Labels[0]} {
				if err == nil {
					err = t.ToDevice(b, 0)
				}
			}
			pending <- prepared{batch, err}
		}
		go prepare()
		return func() error {
			p := <-pending
			go prepare() // the channel holds one, so the last one never blocks
			if p.err != nil {
				return p.err
			}
			m, err := trainer.TrainStep(p.batch)
			if err != nil {
				return err
			}
			readScalar(m[0])
			return nil
		}, nil
	}
}

func evalBench(b compute.Backend, cfg Config) func() (func() error, error) {
	return func() (func() error, error) {
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(1))
		modelFn := models.ModelFn(cfg.Model)
		exec, err := model.NewExec(b, store, func(scope *model.Scope, x, labels *Node) *Node {
			return training.Accuracy(labels, modelFn(scope, x))
		})
		if err != nil {
			return nil, err
		}
		x, y := batchTensors(cfg)
		return timed(exec.Exec, x, y), nil
	}
}
