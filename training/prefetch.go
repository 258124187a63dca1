package training

import (
	"fmt"
	"iter"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"
)

// DefaultDevicePrefetch is how many batches Fit moves to the device ahead of the step that uses them.
const DefaultDevicePrefetch = 1

// devicePrefetch returns seq read ahead by depth batches in a goroutine that also copies each batch's
// tensors to device 0 of b.
//
// Why: go-xla's Execute returns only when the device has finished, and a host tensor is copied to the
// device (synchronously) inside the step call that uses it. Without read-ahead, the step loop is
// serial: fetch batch, create tensors, copy 17 MB (batch 64 at 300x300 uint8) to the GPU, run, repeat,
// and the GPU idles during everything but "run". With it, the next batch is fetched and copied while
// the current step runs; the step loop only hands over device buffers (the trainer donates them).
//
// With depth < 1 seq is returned unchanged. Breaking out of the returned sequence stops the goroutine
// and finalizes the batches it had read ahead.
func devicePrefetch(b compute.Backend, seq iter.Seq2[train.Batch, error], depth int) iter.Seq2[train.Batch, error] {
	if depth < 1 {
		return seq
	}
	type item struct {
		batch train.Batch
		err   error
	}
	return func(yield func(train.Batch, error) bool) {
		ch := make(chan item, depth)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(ch)
			for batch, err := range seq {
				if err == nil {
					if err = batchToDevice(b, batch); err != nil {
						batch = train.Batch{} // finalized by batchToDevice
					}
				}
				select {
				case ch <- item{batch, err}:
				case <-stop:
					_ = batch.Finalize()
					return
				}
				if err != nil {
					return
				}
				// Once the consumer has gone, read no further. (The send above may still win the race
				// against stop while the consumer drains ch: select picks at random among ready cases.)
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		defer func() {
			close(stop)
			for it := range ch { // unblocks the producer and finalizes what it read ahead
				_ = it.batch.Finalize()
			}
			wg.Wait()
		}()
		for it := range ch {
			if !yield(it.batch, it.err) || it.err != nil {
				return
			}
		}
	}
}

// batchToDevice moves every tensor of the batch to device 0, freeing its host copy.
func batchToDevice(b compute.Backend, batch train.Batch) error {
	for _, group := range [][]*tensors.Tensor{batch.Inputs, batch.Labels} {
		for i, t := range group {
			if t == nil {
				continue
			}
			if err := t.ToDevice(b, 0); err != nil {
				_ = batch.Finalize()
				return fmt.Errorf("copying batch tensor %d (%s) to the device: %w", i, t.Shape(), err)
			}
		}
	}
	return nil
}
