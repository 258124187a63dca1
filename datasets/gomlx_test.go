package datasets

import (
	"reflect"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"
)

func TestBatchTensors(t *testing.T) {
	split := solidSplit(t, 10, "train")
	l, err := split.Loader(LoaderOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	it := l.Iterator(t.Context(), 0)
	defer it.Close()
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	images, labels, err := b.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = images.FinalizeAll(); _ = labels.FinalizeAll() }()
	if s := images.Shape(); s.DType != dtypes.Uint8 || !reflect.DeepEqual(s.Dimensions, []int{4, 3, 2, 3}) {
		t.Errorf("images shape %s, want (Uint8)[4 3 2 3]", s)
	}
	if s := labels.Shape(); s.DType != dtypes.Float32 || !reflect.DeepEqual(s.Dimensions, []int{4, 2}) {
		t.Errorf("labels shape %s, want (Float32)[4 2]", s)
	}
	gotImages, err := tensors.CopyFlatData[uint8](images)
	if err != nil {
		t.Fatal(err)
	}
	gotLabels, err := tensors.CopyFlatData[float32](labels)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotImages, b.Images) || !reflect.DeepEqual(gotLabels, b.Labels) {
		t.Error("tensor contents differ from the batch")
	}
	b.Size = 5 // inconsistent with the slices: an error, not a panic.
	if _, _, err := b.Tensors(); err == nil {
		t.Error("inconsistent batch: no error")
	}
}

func TestDatasetEpochs(t *testing.T) {
	split := solidSplit(t, 30, "train")
	l, err := split.Loader(LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	var ds train.Dataset = l.Dataset("train")
	if ds.Name() != "train" {
		t.Errorf("Name() = %q", ds.Name())
	}
	firstLabels := func() ([][]float32, int) {
		var out [][]float32
		count := 0
		for batch, err := range ds.Iter() {
			if err != nil {
				t.Fatal(err)
			}
			if len(batch.Inputs) != 1 || len(batch.Labels) != 1 {
				t.Fatalf("batch with %d inputs and %d labels", len(batch.Inputs), len(batch.Labels))
			}
			count += batch.Inputs[0].Shape().Dimensions[0]
			lab, err := tensors.CopyFlatData[float32](batch.Labels[0])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, lab)
			if err := batch.Finalize(); err != nil {
				t.Fatal(err)
			}
		}
		return out, count
	}
	epoch0, n0 := firstLabels()
	epoch1, n1 := firstLabels()
	if n0 != 30 || n1 != 30 || len(epoch0) != 4 {
		t.Fatalf("epochs of %d and %d examples in %d batches, want 30 in 4", n0, n1, len(epoch0))
	}
	if reflect.DeepEqual(epoch0, epoch1) {
		t.Error("epoch 1 repeats epoch 0's order")
	}
	l.Dataset("x") // independent datasets do not share epochs.
	d := ds.(*Dataset)
	if d.Epoch() != 2 {
		t.Errorf("Epoch() = %d after two epochs", d.Epoch())
	}
	d.Reset()
	again, _ := firstLabels()
	if !reflect.DeepEqual(epoch0, again) {
		t.Error("after Reset the order differs from epoch 0")
	}
	// Breaking out early does not hang or leak.
	for batch, err := range ds.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		_ = batch.Finalize()
		break
	}
}

func TestDatasetSetEpoch(t *testing.T) {
	d := (&Loader{}).Dataset("x")
	d.SetEpoch(3)
	if d.Epoch() != 3 {
		t.Errorf("Epoch() = %d after SetEpoch(3)", d.Epoch())
	}
	d.Reset()
	if d.Epoch() != 0 {
		t.Errorf("Epoch() = %d after Reset", d.Epoch())
	}
}
