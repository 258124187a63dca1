package datasets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"sync"
)

// Defaults of LoaderOptions, the tutorial's values.
const (
	DefaultBatchSize = 64
	// DefaultShuffleFactor: the tutorial shuffles with a buffer of BATCH_SIZE * 100.
	DefaultShuffleFactor = 100
	DefaultPrefetch      = 2
)

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// BatchSize (0: DefaultBatchSize).
	BatchSize int
	// Shuffle enables tf.data's shuffle-buffer semantics with a buffer of ShuffleBuffer examples
	// (0: BatchSize * DefaultShuffleFactor): fill the buffer from the split in order, then
	// repeatedly emit a uniformly chosen buffered example and put the next example in its place;
	// at the end, drain the buffer in random order. A buffer at least as large as the split gives a
	// uniform shuffle. The buffer holds example indices, not pixels, so its size costs no memory.
	// The tutorial shuffles the training split and not the validation split.
	Shuffle       bool
	ShuffleBuffer int
	// Seed seeds the shuffle; epoch e uses Seed+e, so the same seed gives the same order every run.
	Seed uint64
	// DropRemainder drops the last partial batch (Keras keeps it, and so do we by default).
	DropRemainder bool
	// Prefetch is the number of batches prepared ahead by a background goroutine (0:
	// DefaultPrefetch; negative: none, batches are read when asked for).
	Prefetch int
	// Readers read the images of a batch in parallel (0: runtime.NumCPU()).
	Readers int
}

// Loader iterates a Split in batches, epoch after epoch.
type Loader struct {
	split *Split
	opts  LoaderOptions
	pool  sync.Pool
}

// Loader returns a loader over the split.
func (s *Split) Loader(opts LoaderOptions) (*Loader, error) {
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("loader: batch size %d must be positive", opts.BatchSize)
	}
	if opts.ShuffleBuffer == 0 {
		opts.ShuffleBuffer = opts.BatchSize * DefaultShuffleFactor
	}
	if opts.ShuffleBuffer < 0 {
		return nil, fmt.Errorf("loader: shuffle buffer %d must be positive", opts.ShuffleBuffer)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = DefaultPrefetch
	}
	if opts.Readers <= 0 {
		opts.Readers = runtime.NumCPU()
	}
	return &Loader{split: s, opts: opts}, nil
}

// Split is the loader's split.
func (l *Loader) Split() *Split { return l.split }

// Options are the loader's options with defaults filled in.
func (l *Loader) Options() LoaderOptions { return l.opts }

// NumBatches is the number of batches of an epoch.
func (l *Loader) NumBatches() int {
	n, b := l.split.Len(), l.opts.BatchSize
	if l.opts.DropRemainder {
		return n / b
	}
	return (n + b - 1) / b
}

// Order returns the split indices (0 <= i < Split.Len()) of an epoch, in the order they are
// batched.
func (l *Loader) Order(epoch int) []int {
	n := l.split.Len()
	order := make([]int, 0, n)
	if !l.opts.Shuffle {
		for i := range n {
			order = append(order, i)
		}
		return order
	}
	r := newRNG(l.opts.Seed+uint64(epoch), streamShuffle)
	buf := make([]int, 0, min(l.opts.ShuffleBuffer, n))
	next := 0
	for ; next < n && len(buf) < cap(buf); next++ {
		buf = append(buf, next)
	}
	for ; next < n; next++ {
		j := r.intn(len(buf))
		order = append(order, buf[j])
		buf[j] = next
	}
	for len(buf) > 0 {
		j := r.intn(len(buf))
		order = append(order, buf[j])
		last := len(buf) - 1
		buf[j] = buf[last]
		buf = buf[:last]
	}
	return order
}

// Batch is one batch as plain Go slices. Images stay uint8 (the model scales them by 1/255): a
// batch of 64 300x300 images is 17 MB instead of 69 MB of float32, so the host-to-accelerator copy
// moves 4x fewer bytes.
type Batch struct {
	// Images is [Size, Height, Width, Channels], NHWC, row-major.
	Images []uint8
	// Labels is one-hot float32 [Size, NumClasses], as tf.one_hot(label, depth=2).
	Labels []float32
	// ClassIDs are the integer labels, [Size].
	ClassIDs []int32
	// Indices are the split indices of the examples (Split.Example(i)).
	Indices                                   []int
	Size, Height, Width, Channels, NumClasses int

	pool *sync.Pool
}

// Release hands the batch's buffers back to its loader for reuse. Optional: it saves allocating
// 17 MB per batch; the batch must not be used afterwards.
func (b *Batch) Release() {
	if b == nil || b.pool == nil {
		return
	}
	p := b.pool
	b.pool = nil
	p.Put(b)
}

func (l *Loader) newBatch(size int) *Batch {
	h, w, c := l.split.prep.cache.Shape()
	nc := len(l.split.prep.classes)
	b, _ := l.pool.Get().(*Batch)
	if b == nil {
		b = &Batch{}
	}
	b.Size, b.Height, b.Width, b.Channels, b.NumClasses = size, h, w, c, nc
	b.Images = resize(b.Images, size*h*w*c)
	b.Labels = resize(b.Labels, size*nc)
	clear(b.Labels)
	b.ClassIDs = resize(b.ClassIDs, size)
	b.Indices = resize(b.Indices, size)
	b.pool = &l.pool
	return b
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// readBatch fills a batch with the given split indices, reading images on opts.Readers goroutines.
func (l *Loader) readBatch(indices []int) (*Batch, error) {
	b := l.newBatch(len(indices))
	imgSize := b.Height * b.Width * b.Channels
	for k, i := range indices {
		slot := l.split.slots[i]
		label := l.split.prep.cache.Label(int(slot))
		b.Indices[k] = i
		b.ClassIDs[k] = int32(label)
		b.Labels[k*b.NumClasses+label] = 1
	}
	readers := min(l.opts.Readers, len(indices))
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := r; k < len(indices); k += readers {
				if err := l.split.Image(indices[k], b.Images[k*imgSize:(k+1)*imgSize]); err != nil {
					errs[r] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Release()
		return nil, err
	}
	return b, nil
}

// Iterator yields the batches of one epoch. It is not safe for concurrent use.
type Iterator struct {
	l       *Loader
	order   []int
	next    int // next batch number (synchronous mode).
	ch      chan batchOrErr
	cancel  context.CancelFunc
	done    chan struct{}
	ctx     context.Context
	stopped bool
}

type batchOrErr struct {
	b   *Batch
	err error
}

// Iterator starts an epoch. With prefetching, a goroutine reads ahead until the epoch ends, ctx is
// cancelled or Close is called. Always Close an iterator you do not drain.
func (l *Loader) Iterator(ctx context.Context, epoch int) *Iterator {
	it := &Iterator{l: l, order: l.Order(epoch), ctx: ctx}
	if l.opts.Prefetch < 0 {
		return it
	}
	ctx, it.cancel = context.WithCancel(ctx)
	it.ch = make(chan batchOrErr, l.opts.Prefetch)
	it.done = make(chan struct{})
	go func() {
		defer close(it.done)
		defer close(it.ch)
		for k := 0; ; k++ {
			indices, ok := it.batchIndices(k)
			if !ok {
				return
			}
			if ctx.Err() != nil {
				return
			}
			b, err := l.readBatch(indices)
			select {
			case it.ch <- batchOrErr{b, err}:
			case <-ctx.Done():
				b.Release()
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return it
}

func (it *Iterator) batchIndices(k int) ([]int, bool) {
	bs := it.l.opts.BatchSize
	start := k * bs
	if start >= len(it.order) {
		return nil, false
	}
	end := min(start+bs, len(it.order))
	if end-start < bs && it.l.opts.DropRemainder {
		return nil, false
	}
	return it.order[start:end], true
}

// Next returns the next batch, or io.EOF at the end of the epoch.
func (it *Iterator) Next() (*Batch, error) {
	if it.stopped {
		return nil, io.EOF
	}
	if it.ch == nil {
		if err := it.ctx.Err(); err != nil {
			return nil, err
		}
		indices, ok := it.batchIndices(it.next)
		if !ok {
			return nil, io.EOF
		}
		it.next++
		return it.l.readBatch(indices)
	}
	r, ok := <-it.ch
	if !ok {
		if err := it.ctx.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	return r.b, r.err
}

// Close stops the prefetching goroutine and releases the batches it had read ahead.
func (it *Iterator) Close() {
	if it.stopped {
		return
	}
	it.stopped = true
	if it.cancel == nil {
		return
	}
	it.cancel()
	for r := range it.ch {
		r.b.Release()
	}
	<-it.done
}

// Batches ranges over the batches of an epoch; breaking out of the loop stops the prefetching.
func (l *Loader) Batches(ctx context.Context, epoch int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		it := l.Iterator(ctx, epoch)
		defer it.Close()
		for {
			b, err := it.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(b, err) || err != nil {
				return
			}
		}
	}
}
