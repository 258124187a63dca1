package training

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/internal/backendtest"
)

// TestStepMemoryScalesWithBatch: the planned values of a training step are the activations, so
// twice the batch needs about twice the memory, and the process estimate is above the values.
func TestStepMemoryScalesWithBatch(t *testing.T) {
	for _, be := range backendtest.All(t) {
		cfg := Small()
		p8, err := StepMemory(be.Backend, cfg.Model, 8, cfg.LabelSmoothing)
		if err != nil {
			t.Fatalf("%s: %v", be.Name, err)
		}
		p16, err := StepMemory(be.Backend, cfg.Model, 16, cfg.LabelSmoothing)
		if err != nil {
			t.Fatalf("%s: %v", be.Name, err)
		}
		if r := float64(p16.Peak) / float64(p8.Peak); p8.Peak <= 0 || r < 1.7 || r > 2.1 {
			t.Errorf("%s: values at batch 16 / batch 8 = %d / %d bytes (%.2f), want about 2", be.Name, p16.Peak, p8.Peak, r)
		}
		// At 64 -> 32 and batch 16 the step holds the resizer's 64x64x4 activations and the
		// DenseNet's: at least one [16,64,64,4] float32 tensor, and well under 100 MB.
		if p16.Peak < 16*64*64*4*4 || p16.Peak > 100e6 {
			t.Errorf("%s: values at batch 16: %d bytes", be.Name, p16.Peak)
		}
		cfg.BatchSize = 16
		est, err := EstimateMemory(be.Backend, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if est.Values != p16.Peak || (est.Process != 0 && est.Process <= est.Values) {
			t.Errorf("%s: estimate %+v for values %d", be.Name, est, p16.Peak)
		}
	}
}

// TestCheckMemoryRefusesWhatCannotFit: a tutorial-sized model at 4000x4000 needs terabytes; the
// check refuses it before anything is compiled, naming the estimate and what to do.
func TestCheckMemoryRefusesWhatCannotFit(t *testing.T) {
	for _, be := range backendtest.All(t) {
		if be.Name == "xla" {
			continue // no estimate: its memory is a GPU's
		}
		cfg := Small()
		cfg.Model.InputHeight, cfg.Model.InputWidth = 4000, 4000
		cfg.BatchSize = 64
		_, err := CheckMemory(be.Backend, cfg, 0)
		var me *MemoryError
		if !errors.As(err, &me) {
			t.Fatalf("%s: CheckMemory at 4000x4000, batch 64: %v, want a *MemoryError", be.Name, err)
		}
		msg := err.Error()
		for _, want := range []string{"batch 64", "available", "-memory-check=false"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q lacks %q", be.Name, msg, want)
			}
		}
		if me.Fits >= 64 || (me.Fits > 0 && uint64(me.FitsEstimate.Process) > me.Available) {
			t.Errorf("%s: suggested batch %d (%+v) for %d bytes available", be.Name, me.Fits, me.FitsEstimate, me.Available)
		}
		cfg.Model.InputHeight, cfg.Model.InputWidth = 64, 64
		whole, err := CheckMemory(be.Backend, cfg, 640)
		if err != nil {
			t.Errorf("%s: the small configuration at batch 64 refused: %v", be.Name, err)
		}
		// 650 examples end with a batch of 10: a second graph, counted in the estimate.
		partial, err := CheckMemory(be.Backend, cfg, 650)
		if err != nil || partial.Remainder != 10 || whole.Remainder != 0 || partial.Together <= whole.Process ||
			partial.Process != whole.Process || partial.Alternate || !strings.Contains(partial.String(), "last, partial batch of 10") {
			t.Errorf("%s: with a partial last batch: %+v (%v); without: %+v", be.Name, partial, err, whole)
		}
		// Memory for either graph but not both: passed, the graphs to alternate.
		restore := availableMemory
		availableMemory = func() (uint64, bool) { return uint64(partial.Process+partial.Together) / 2, true }
		alt, err := CheckMemory(be.Backend, cfg, 650)
		availableMemory = restore
		if err != nil || !alt.Alternate || !strings.Contains(alt.String(), "compiled again every epoch") {
			t.Errorf("%s: room for one graph of two: %+v (%v)", be.Name, alt, err)
		}
	}
}

// TestGraphsReleasedWhenMemoryIsShort: with no memory to spare, Fit releases the graphs it holds
// before compiling one for another batch size (the epoch's last, partial batch; the next epoch's
// full ones), and a comparison releases the first model's graphs before the second's first step;
// the training is the same as with the graphs kept, only compiled again.
func TestGraphsReleasedWhenMemoryIsShort(t *testing.T) {
	for _, be := range backendtest.All(t) {
		if be.Name == "xla" {
			continue // no estimate: its memory is a GPU's
		}
		cfg := tinyConfig()
		cfg.Epochs = 2
		kept, err := Fit(context.Background(), be.Backend, cfg, tinyData(), Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		restore := availableMemory
		availableMemory = func() (uint64, bool) { return 1, true }
		var log, cmpLog strings.Builder
		released, err := Fit(context.Background(), be.Backend, cfg, tinyData(), Options{Dir: t.TempDir(), Log: &log, SkipMemoryCheck: true})
		if err == nil {
			_, err = Compare(context.Background(), be.Backend, cfg, tinyData(), []int64{3}, CompareOptions{Dir: t.TempDir(), Log: &cmpLog, SkipMemoryCheck: true})
		}
		availableMemory = restore
		if err != nil {
			t.Fatal(err)
		}
		if k, r := kept.Epochs[1].CompileSteps, released.Epochs[1].CompileSteps; k != 0 || r != 2 {
			t.Errorf("%s: epoch 2 compiled %d training graphs with memory short, %d with it free; want 2 and 0", be.Name, r, k)
		}
		for i := range kept.Epochs {
			k, r := kept.Epochs[i], released.Epochs[i]
			if !backendtest.Close(be.Backend, r.Loss, k.Loss) || !backendtest.Close(be.Backend, r.ValLoss, k.ValLoss) {
				t.Errorf("%s, epoch %d: loss %v, val_loss %v with the graphs released; %v, %v kept", be.Name, i+1, r.Loss, r.ValLoss, k.Loss, k.ValLoss)
			}
		}
		for _, want := range []string{
			"the training graph for a batch of 4 needs about", "released the compiled graphs held (resizer: training at batch 8)",
			"(resizer: training at batch 4, validation)", // epoch 2's first step
		} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("%s: the log lacks %q:\n%s", be.Name, want, log.String())
			}
		}
		// The baseline's first step, after the resizer's run.
		if _, baseline, _ := strings.Cut(cmpLog.String(), "baseline-seed3"); !strings.Contains(baseline, "(resizer: training at batch 4, validation)") {
			t.Errorf("%s: the comparison's baseline did not release the resizer's graphs:\n%s", be.Name, cmpLog.String())
		}
	}
}

// TestChunksSplitInOrder: a batch of 37 in chunks of 16 gives 16, 16 and 5 examples, the images
// and labels in their order; a batch of 16 passes whole.
func TestChunksSplitInOrder(t *testing.T) {
	mk := func(n int) train.Batch {
		px := make([]uint8, n*2*2*3)
		for i := range px {
			px[i] = uint8(i / 12)
		}
		lb := make([]float32, n*2)
		for i := range n {
			lb[2*i+i%2] = float32(i)
		}
		return train.Batch{Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(px, n, 2, 2, 3)},
			Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(lb, n, 2)}}
	}
	seq := func(yield func(train.Batch, error) bool) {
		_ = yield(mk(37), nil) && yield(mk(16), nil)
	}
	var sizes []int
	next := 0
	for b, err := range chunks(seq, 16) {
		if err != nil {
			t.Fatal(err)
		}
		n := b.Inputs[0].Shape().Dimensions[0]
		sizes = append(sizes, n)
		px := tensors.MustCopyFlatData[uint8](b.Inputs[0])
		lb := tensors.MustCopyFlatData[float32](b.Labels[0])
		for i := range n {
			want := (next + i) % 37 // the second batch starts again at 0
			if len(sizes) == 4 {
				want = i
			}
			if int(px[i*12]) != want || lb[2*i+want%2] != float32(want) {
				t.Fatalf("chunk %d, example %d: pixel %d, label row %v; want example %d", len(sizes), i, px[i*12], lb[2*i:2*i+2], want)
			}
		}
		next += n
	}
	if !slices.Equal(sizes, []int{16, 16, 5, 16}) {
		t.Errorf("chunk sizes %v, want [16 16 5 16]", sizes)
	}
}

// TestCheckMemoryRecomputesWhenShort: a DenseNet step that does not fit in the memory available is
// estimated again with its activations recomputed; where that fits, the check passes with it, says
// so, and Apply turns Recompute on. Where neither fits, the refusal gives both estimates and does
// not suggest -recompute, already counted. Checked with the available memory stubbed between the
// two estimates, on every CPU backend, with the tutorial's model at batch 16 (only planned: nothing
// is compiled).
func TestCheckMemoryRecomputesWhenShort(t *testing.T) {
	for _, be := range backendtest.All(t) {
		if be.Name == "xla" {
			continue // no estimate: its memory is a GPU's
		}
		cfg := Default()
		cfg.BatchSize = 16 // on ONNX Runtime recomputing pays from about batch 8 (its estimate's larger base)
		plain, recomputing := estimatesBothWays(t, be, cfg)
		leanest := recomputing.Process
		if be.Name == "onnx" {
			leanest = min(leanest, leanEstimate(t, be, cfg).Process)
		}
		restore := availableMemory
		availableMemory = func() (uint64, bool) { return uint64(plain.Process+recomputing.Process) / 2, true }
		est, err := CheckMemory(be.Backend, cfg, 0)
		availableMemory = func() (uint64, bool) { return uint64(leanest) / 2, true }
		_, short := CheckMemory(be.Backend, cfg, 0)
		availableMemory = restore
		if err != nil || !est.ChoseRecompute || !est.Recompute || est.Process != recomputing.Process || est.Without != plain.Process ||
			!est.Apply(cfg).Model.Recompute || !strings.Contains(est.String(), "recomputed in the backward pass") {
			t.Errorf("%s: with room for the step only recomputing: %+v (%v), %q", be.Name, est, err, est.String())
		}
		if cfg.Model.Recompute {
			t.Errorf("%s: CheckMemory changed its argument", be.Name)
		}
		var me *MemoryError
		if !errors.As(short, &me) || me.Recomputing == nil || strings.Contains(short.Error(), "-recompute") ||
			!strings.Contains(short.Error(), "recomputing activations in the backward pass it would still need") ||
			(be.Name == "onnx") != (me.Lean != nil) || (be.Name == "onnx") != strings.Contains(short.Error(), "without buffer sharing it would still need") {
			t.Errorf("%s: with room for none: %v", be.Name, short)
		}
	}
}

// leanEstimate is cfg's estimate on ONNX Runtime without buffer sharing, recomputing activations
// (what CheckMemory tries last).
func leanEstimate(t *testing.T, be backendtest.Backend, cfg Config) MemoryEstimate {
	t.Helper()
	cfg.Lean, cfg.Model.Recompute = true, true
	est, err := EstimateMemory(be.Backend, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !est.Lean {
		t.Fatalf("%s: the lean estimate %+v is not lean", be.Name, est)
	}
	return est
}

// TestCheckMemoryRunsLeanWhenShort: on ONNX Runtime, a step that fits neither as it is nor
// recomputing its activations is estimated without buffer sharing, recomputing, and passes when
// that fits, with the configuration (Apply) to train; elsewhere there is no such way and it is
// refused. The tutorial's model at batch 64, only planned.
func TestCheckMemoryRunsLeanWhenShort(t *testing.T) {
	for _, be := range backendtest.All(t) {
		if be.Name == "xla" {
			continue
		}
		cfg := Default()
		_, recomputing := estimatesBothWays(t, be, cfg)
		lean := recomputing
		lean.Process /= 3 // elsewhere: a third of recomputing's memory, the room given below
		if be.Name == "onnx" {
			if lean = leanEstimate(t, be, cfg); lean.Process >= recomputing.Process/2 {
				t.Fatalf("onnx: lean %s, recomputing %s: want under half", lean, recomputing)
			}
		}
		restore := availableMemory
		availableMemory = func() (uint64, bool) { return uint64(lean.Process+recomputing.Process) / 2, true }
		est, err := CheckMemory(be.Backend, cfg, 0)
		availableMemory = restore
		if be.Name != "onnx" {
			if err == nil {
				t.Errorf("%s: passed with less memory than recomputing needs: %+v", be.Name, est)
			}
			continue
		}
		applied := est.Apply(cfg)
		if err != nil || !est.ChoseLean || !est.ChoseRecompute || est.Process != lean.Process || !applied.Lean ||
			!applied.Model.Recompute || !strings.Contains(est.String(), "without buffer sharing (as -lean asks") {
			t.Errorf("onnx: with room for the lean step only: %+v (%v), %q", est, err, est.String())
		}
		// Room for the lean step at batch 32, not 64: the batch suggested is the one lean fits.
		half := cfg
		half.BatchSize = 32
		lean32 := leanEstimate(t, be, half)
		availableMemory = func() (uint64, bool) { return uint64(float64(lean32.Process) * 1.02), true }
		_, short := CheckMemory(be.Backend, cfg, 0)
		availableMemory = restore
		var me *MemoryError
		if !errors.As(short, &me) || me.Fits != 32 || !me.FitsEstimate.Lean || !strings.Contains(short.Error(), "use -batch 32") {
			t.Errorf("onnx: with room for the lean step at batch 32: %v (%+v)", short, me)
		}
	}
}

// TestLeanTrainsTheSame: a run on ONNX Runtime without buffer sharing (Config.Lean) has the same
// history, loss for loss, as the run with it: the executor changes where values live, not what is
// computed.
func TestLeanTrainsTheSame(t *testing.T) {
	for _, be := range backendtest.All(t) {
		if be.Name != "onnx" {
			continue
		}
		cfg := tinyConfig()
		cfg.Epochs = 2
		plain, err := Fit(context.Background(), be.Backend, cfg, tinyData(), Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		lb, err := RunsOn(be.Backend, Config{Lean: true})
		if err != nil || lb == be.Backend {
			t.Fatalf("the lean backend: %v (the same as the default: %v)", err, lb == be.Backend)
		}
		cfg.Lean = true
		var log strings.Builder
		lean, err := Fit(context.Background(), be.Backend, cfg, tinyData(), Options{Dir: t.TempDir(), Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "without buffer sharing") {
			t.Errorf("the lean run does not say it is lean:\n%s", log.String())
		}
		for i := range plain.Epochs {
			p, l := plain.Epochs[i], lean.Epochs[i]
			if p.Loss != l.Loss || p.Accuracy != l.Accuracy || p.ValLoss != l.ValLoss || p.ValAccuracy != l.ValAccuracy {
				t.Errorf("epoch %d: lean %+v, with buffer sharing %+v", i+1, l, p)
			}
		}
	}
}

// TestFitTrainsRecomputingWhenShort: Fit trains with the configuration the memory check chose (the
// tiny model on the pure-Go backend, the available memory stubbed between its two estimates), and
// the run records it; resuming it without Recompute asked for is allowed (recomputing changes the
// memory a step uses, not what it computes).
func TestFitTrainsRecomputingWhenShort(t *testing.T) {
	be, cfg := tinyOnGo(t)
	plain, recomputing := estimatesBothWays(t, be, cfg)
	restore := availableMemory
	availableMemory = func() (uint64, bool) { return uint64(plain.Process+recomputing.Process) / 2, true }
	defer func() { availableMemory = restore }()
	dir := t.TempDir()
	var log strings.Builder
	if _, err := Fit(context.Background(), be.Backend, cfg, tinyData(), Options{Dir: dir, Log: &log}); err != nil {
		t.Fatal(err)
	}
	_, saved, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Model.Recompute || !strings.Contains(log.String(), "recomputed in the backward pass") {
		t.Errorf("the run recorded Recompute=%v; log:\n%s", saved.Model.Recompute, log.String())
	}
	availableMemory = restore
	cfg.Epochs = 2
	if _, err := Fit(context.Background(), be.Backend, cfg, tinyData(), Options{Dir: dir, Resume: true}); err != nil {
		t.Errorf("resuming with memory to spare (Recompute off): %v", err)
	}
}

// tinyOnGo is the pure-Go backend and the tiny model for one epoch: the memory tests that train.
func tinyOnGo(t *testing.T) (backendtest.Backend, Config) {
	t.Helper()
	be := backendtest.All(t)[0]
	if be.Name != "go" {
		t.Fatalf("the first test backend is %s, want go", be.Name)
	}
	cfg := tinyConfig()
	cfg.Epochs = 1
	return be, cfg
}

// estimatesBothWays returns cfg's memory estimates on be without and with activations recomputed,
// failing the test unless recomputing is estimated to need less (the tests above need room between).
func estimatesBothWays(t *testing.T, be backendtest.Backend, cfg Config) (plain, recomputing MemoryEstimate) {
	t.Helper()
	plain, err := EstimateMemory(be.Backend, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Model.Recompute = true
	if recomputing, err = EstimateMemory(be.Backend, cfg); err != nil {
		t.Fatal(err)
	}
	if recomputing.Process >= plain.Process {
		t.Fatalf("%s: recomputing is estimated at %d bytes, not less than %d without", be.Name, recomputing.Process, plain.Process)
	}
	return plain, recomputing
}

// TestCompareDecidesMemoryOncePerModel: Compare checks each model's memory once, before any run
// trains, and each model keeps its own decision for every seed: with the memory available stubbed
// between the resizer model's two estimates (and above the baseline's), the resizer model's runs
// recompute activations and the baseline's do not. Once training has begun the stub says almost
// nothing is available, as on a machine whose process holds the graphs it compiled: a check made
// again when each run starts would refuse the next run, or decide it differently.
func TestCompareDecidesMemoryOncePerModel(t *testing.T) {
	be, cfg := tinyOnGo(t)
	cfg.Model.Resizer = true
	plain, recomputing := estimatesBothWays(t, be, cfg)
	baseline := cfg
	baseline.Model.Resizer = false
	base, err := EstimateMemory(be.Backend, baseline)
	if err != nil {
		t.Fatal(err)
	}
	room := max((plain.Process+recomputing.Process)/2, base.Process)
	if room >= plain.Process {
		t.Fatalf("the baseline's estimate (%d bytes) leaves no room between the resizer model's (%d, %d recomputing)",
			base.Process, plain.Process, recomputing.Process)
	}
	var training atomic.Bool
	restore := availableMemory
	availableMemory = func() (uint64, bool) {
		if training.Load() {
			return 1 << 20, true
		}
		return uint64(room), true
	}
	defer func() { availableMemory = restore }()
	dir := t.TempDir()
	var log strings.Builder
	_, err = Compare(context.Background(), be.Backend, cfg, tinyData(), []int64{1, 2}, CompareOptions{Dir: dir, Log: &log,
		OnStep: func(time.Duration) { training.Store(true) }})
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, log.String())
	}
	for _, seed := range []int64{1, 2} {
		for name, want := range map[string]bool{"resizer": true, "baseline": false} {
			_, saved, err := LoadRun(filepath.Join(dir, fmt.Sprintf("%s-seed%d", name, seed)))
			if err != nil {
				t.Fatal(err)
			}
			if saved.Model.Recompute != want {
				t.Errorf("%s, seed %d: trained with Recompute=%v, want %v", name, seed, saved.Model.Recompute, want)
			}
		}
	}
	if n := strings.Count(log.String(), "Memory, "); n != 2 {
		t.Errorf("%d memory estimates logged, want one per model; log:\n%s", n, log.String())
	}
}

// TestSmallModelsEstimatedSmall: the estimate of a small model's step stays near what its process
// takes (the small configuration's whole training process peaked at 0.15 GB on ONNX Runtime), so a
// machine with little memory is not refused it: a fit that carried the tutorial's graph-sized
// overhead (1.8 GB) as a constant estimated 1.84 GB.
func TestSmallModelsEstimatedSmall(t *testing.T) {
	for _, be := range backendtest.All(t) {
		est, err := EstimateMemory(be.Backend, Small())
		if err != nil {
			t.Fatalf("%s: %v", be.Name, err)
		}
		if est.Process > 0.5e9 {
			t.Errorf("%s: the small configuration's step estimated at %s", be.Name, est)
		}
	}
}
