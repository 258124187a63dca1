package datasets

import (
	"context"
	"fmt"
	"iter"
	"sync"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"
)

// Tensors copies the batch into two new GoMLX tensors: images uint8 [Size, Height, Width, Channels]
// and one-hot labels float32 [Size, NumClasses]. The caller owns them (finalize them when done);
// the batch can be released right after.
func (b *Batch) Tensors() (images, labels *tensors.Tensor, err error) {
	if b == nil || b.Size <= 0 {
		return nil, nil, fmt.Errorf("batch: empty")
	}
	if len(b.Images) != b.Size*b.Height*b.Width*b.Channels || len(b.Labels) != b.Size*b.NumClasses {
		return nil, nil, fmt.Errorf("batch: %d image bytes and %d labels do not match %d x %dx%dx%d and %d classes",
			len(b.Images), len(b.Labels), b.Size, b.Height, b.Width, b.Channels, b.NumClasses)
	}
	images = tensors.FromFlatDataAndDimensions(b.Images, b.Size, b.Height, b.Width, b.Channels)
	labels = tensors.FromFlatDataAndDimensions(b.Labels, b.Size, b.NumClasses)
	return images, labels, nil
}

// Dataset adapts a Loader to GoMLX's train.Dataset, for train.Trainer and the evaluation loops:
// each Iter call runs the next epoch (epoch 0, 1, 2, ...; shuffled with Seed+epoch), yielding
// train.Batch{Inputs: [images uint8 [B,H,W,C]], Labels: [one-hot float32 [B,classes]]} with fresh
// tensors whose ownership passes to the caller.
type Dataset struct {
	name   string
	loader *Loader
	mu     sync.Mutex
	epoch  int
}

var _ train.Dataset = (*Dataset)(nil)

// Dataset returns a train.Dataset over the loader.
func (l *Loader) Dataset(name string) *Dataset { return &Dataset{name: name, loader: l} }

// Name implements train.Dataset.
func (d *Dataset) Name() string { return d.name }

// Reset makes the next Iter start again at epoch 0, so the data order repeats from the start.
func (d *Dataset) Reset() {
	d.mu.Lock()
	d.epoch = 0
	d.mu.Unlock()
}

// SetEpoch makes the next Iter run epoch e (training.Fit calls it, so a resumed run sees the same
// data order as an uninterrupted one).
func (d *Dataset) SetEpoch(e int) {
	d.mu.Lock()
	d.epoch = e
	d.mu.Unlock()
}

// Epoch is the epoch the next Iter call will run.
func (d *Dataset) Epoch() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

// Iter implements train.Dataset: ranging over the returned sequence runs the next epoch.
func (d *Dataset) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		d.mu.Lock()
		epoch := d.epoch
		d.epoch++
		d.mu.Unlock()
		for b, err := range d.loader.Batches(context.Background(), epoch) {
			if err != nil {
				yield(train.Batch{}, err)
				return
			}
			images, labels, err := b.Tensors()
			b.Release()
			if err != nil {
				yield(train.Batch{}, err)
				return
			}
			if !yield(train.Batch{Inputs: []*tensors.Tensor{images}, Labels: []*tensors.Tensor{labels}}, nil) {
				return
			}
		}
	}
}
