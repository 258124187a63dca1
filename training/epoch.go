package training

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
)

// One epoch of training steps: the loop, its timing, and the checks on its batches.

// trainEpoch runs one epoch's training steps (epoch is 0-based) and returns its statistics, the
// validation ones left zero.
// (One piece: the loop's per-step bookkeeping, timing, compiling steps, loss sums and the bar,
// reads best in the order each step does it.)
func (r *run) trainEpoch(ctx context.Context, epoch int, ds train.Dataset, bar *progress) (EpochStats, error) {
	stats := EpochStats{Epoch: epoch + 1}
	if s, ok := ds.(EpochSetter); ok {
		s.SetEpoch(epoch)
	}
	t0 := time.Now()
	var lossSum, accSum float64
	images := 0
	var stepTimes []time.Duration
	prevBatch := 0 // the size of the epoch's previous batch (0: none yet)
	waitStart := t0
	for batch, err := range devicePrefetch(r.b, ds.Iter(), r.opt.DevicePrefetch) {
		stats.DataWaitSeconds += time.Since(waitStart).Seconds()
		if err != nil {
			return stats, fmt.Errorf("training: reading training data: %w", err)
		}
		if err := ctx.Err(); err != nil {
			_ = batch.Finalize()
			return stats, err
		}
		n, err := batchSize(batch)
		if err != nil {
			return stats, fmt.Errorf("training: training data: %w", err)
		}
		if err := r.checkBatchSize(n, prevBatch, stats.Steps+1, epoch+1); err != nil {
			_ = batch.Finalize()
			return stats, err
		}
		prevBatch = n
		r.makeRoom(n, bar)
		graphsBefore, stepStart := r.trainGraphs, time.Now()
		m, err := r.trainer.TrainStep(batch)
		if err != nil {
			return stats, fmt.Errorf("training: step %d of epoch %d: %w", stats.Steps+1, epoch+1, err)
		}
		l, a := scalar(m[r.trainLoss]), scalar(m[r.trainAcc]) // waits for the step to finish
		d := time.Since(stepStart)
		if r.opt.OnStep != nil {
			r.opt.OnStep(d)
		}
		if r.trainGraphs != graphsBefore {
			stats.CompileSeconds += d.Seconds()
			stats.CompileSteps++
			bar.compiled(d, n)
		} else {
			stepTimes = append(stepTimes, d)
		}
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return stats, fmt.Errorf("training: loss became %v at step %d of epoch %d", l, stats.Steps+1, epoch+1)
		}
		lossSum += l * float64(n)
		accSum += a * float64(n)
		images += n
		stats.Steps++
		bar.update(stats.Steps, images, lossSum/float64(images), accSum/float64(images), false)
		waitStart = time.Now()
	}
	if images == 0 {
		return stats, errors.New("training: the training data yielded no examples")
	}
	stats.Seconds = time.Since(t0).Seconds()
	stats.Loss, stats.Accuracy = lossSum/float64(images), accSum/float64(images)
	stats.ImagesPerS = float64(images) / stats.Seconds
	stats.StepSeconds, stats.StepMedianMs = sumAndMedian(stepTimes)
	stats.TrainGraphs = r.trainGraphs
	return stats, nil
}

// checkBatchSize refuses a training batch of n examples (step of epoch, 1-based; prev: the size of
// the batch before it, 0 for the first) that does not fit Config.BatchSize: one larger, or one
// following a smaller batch (only the epoch's last batch may be smaller). Otherwise the run would
// train with the data's batch size while its configuration, the progress bar, the memory check and
// the history say another.
func (r *run) checkBatchSize(n, prev, step, epoch int) error {
	want := r.cfg.BatchSize
	size, got := n, "batch"
	switch {
	case n > want:
	case prev > 0 && prev < want:
		size, got, step = prev, "batch, not the epoch's last,", step-1
	default:
		return nil
	}
	return fmt.Errorf("training: the training data's %s at step %d of epoch %d holds %d examples, but Config.BatchSize is %d: "+
		"give Fit data in batches of Config.BatchSize (OpenData builds them so; only an epoch's last batch may be smaller), "+
		"or set Config.BatchSize (-batch) to the data's batch size", got, step, epoch, size, want)
}

// sumAndMedian returns the total of ds in seconds and their median in milliseconds (0, 0 if empty).
func sumAndMedian(ds []time.Duration) (sum, medianMs float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	for _, d := range ds {
		sum += d.Seconds()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return sum, float64(m) / float64(time.Millisecond)
}

func batchSize(b train.Batch) (int, error) {
	if len(b.Inputs) != 1 || len(b.Labels) != 1 {
		_ = b.Finalize()
		return 0, fmt.Errorf("want 1 input and 1 label per batch, got %d and %d", len(b.Inputs), len(b.Labels))
	}
	return b.Inputs[0].Shape().Dimensions[0], nil
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

func metricIndex(ms []metric.Interface, name string) int {
	for i, m := range ms {
		if m.Name() == name {
			return i
		}
	}
	panic(fmt.Sprintf("training: metric %q not found", name))
}
