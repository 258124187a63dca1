package training

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/internal/backendtest"
)

// countingData yields n batches of one scalar-per-example tensor and records how many it produced,
// failing at batch failAt (if > 0).
type countingData struct {
	n, failAt int
	produced  int
	tensors   []*tensors.Tensor
}

func (d *countingData) Name() string { return "counting" }

func (d *countingData) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		for i := range d.n {
			if d.failAt > 0 && i == d.failAt {
				yield(train.Batch{}, errors.New("disk on fire"))
				return
			}
			d.produced++
			in, lb := tensors.FromValue([]float32{float32(i)}), tensors.FromValue([]float32{1})
			d.tensors = append(d.tensors, in, lb)
			if !yield(train.Batch{Inputs: []*tensors.Tensor{in}, Labels: []*tensors.Tensor{lb}}, nil) {
				return
			}
		}
	}
}

func TestDevicePrefetch(t *testing.T) {
	b := testBackend(t)
	// All batches arrive, in order, already on the device.
	d := &countingData{n: 7}
	i := 0
	for batch, err := range devicePrefetch(b, d.Iter(), 2) {
		if err != nil {
			t.Fatal(err)
		}
		if !batch.Inputs[0].IsOnDevice(0) {
			t.Errorf("batch %d not on the device", i)
		}
		if got := batch.Inputs[0].Value().([]float32)[0]; got != float32(i) {
			t.Errorf("batch %d holds %v", i, got)
		}
		_ = batch.Finalize()
		i++
	}
	if i != 7 {
		t.Errorf("got %d batches, want 7", i)
	}
	// Stopping early stops the reader and releases what it had read ahead.
	d = &countingData{n: 100}
	for range devicePrefetch(b, d.Iter(), 2) {
		break
	}
	if d.produced > 4 {
		t.Errorf("reader ran %d batches ahead after the consumer stopped", d.produced)
	}
	for k, tt := range d.tensors[2:] { // the first batch belongs to the consumer
		if tt.Ok() {
			t.Errorf("read-ahead tensor %d not finalized", k)
		}
	}
	// Errors arrive after the good batches and end the sequence.
	d = &countingData{n: 10, failAt: 3}
	var got []error
	for batch, err := range devicePrefetch(b, d.Iter(), 1) {
		got = append(got, err)
		if err == nil {
			_ = batch.Finalize()
		}
	}
	if len(got) != 4 || got[3] == nil || !strings.Contains(got[3].Error(), "disk on fire") {
		t.Errorf("sequence with a failing read: %v", got)
	}
}

// Reading ahead onto the device changes when batches are copied, not what is computed: the same
// numbers (bit-identical on the CPU backends; within backendtest.RunToRun on XLA, which is not
// reproducible run to run on a GPU).
func TestFitDevicePrefetchSameResults(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Epochs = 1
	var losses []EpochStats
	for _, depth := range []int{-1, 0, 3} {
		h, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: t.TempDir(), DevicePrefetch: depth})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, h.Last())
	}
	for i, e := range losses[1:] {
		if !backendtest.Close(b, e.Loss, losses[0].Loss) || !backendtest.Close(b, e.ValLoss, losses[0].ValLoss) ||
			!backendtest.Close(b, e.Accuracy, losses[0].Accuracy) {
			t.Errorf("run %d: loss %v / val loss %v, without read-ahead %v / %v", i+1, e.Loss, e.ValLoss, losses[0].Loss, losses[0].ValLoss)
		}
	}
}
