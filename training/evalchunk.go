package training

import (
	"iter"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"
)

// EvalChunk is the most examples one validation step evaluates at once. Validation runs in
// inference mode (batch norm uses its moving statistics), so splitting a batch changes nothing but
// the order of a float sum, and its memory no longer grows with the training batch: at the
// tutorial's batch 64 on ONNX Runtime the validation session took 4.8 GB more than the training
// step alone (docs/BENCHMARKS.md), enough to push the process past 23 GiB.
const EvalChunk = 16

// chunks splits each batch of seq with more than size examples into batches of at most size, in
// order (the last one smaller). Batches it cannot split (not one uint8 or float32 input and
// label) pass whole.
func chunks(seq iter.Seq2[train.Batch, error], size int) iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		for b, err := range seq {
			if err != nil || len(b.Inputs) != 1 || len(b.Labels) != 1 || b.Inputs[0].Shape().Dimensions[0] <= size {
				if !yield(b, err) {
					return
				}
				continue
			}
			xs, okX := split(b.Inputs[0], size)
			ys, okY := split(b.Labels[0], size)
			if !okX || !okY {
				if !yield(b, nil) {
					return
				}
				continue
			}
			_ = b.Finalize()
			for i := range xs {
				if !yield(train.Batch{Inputs: []*tensors.Tensor{xs[i]}, Labels: []*tensors.Tensor{ys[i]}}, nil) {
					for _, t := range append(xs[i+1:], ys[i+1:]...) {
						t.MustFinalizeAll()
					}
					return
				}
			}
		}
	}
}

// split cuts t along its first axis into tensors of at most size rows (host copies); false for a
// dtype it does not handle.
func split(t *tensors.Tensor, size int) ([]*tensors.Tensor, bool) {
	switch t.DType() {
	case dtypes.Uint8:
		return splitAs[uint8](t, size), true
	case dtypes.Float32:
		return splitAs[float32](t, size), true
	}
	return nil, false
}

func splitAs[T uint8 | float32](t *tensors.Tensor, size int) []*tensors.Tensor {
	dims := t.Shape().Dimensions
	flat := tensors.MustCopyFlatData[T](t)
	row := len(flat) / dims[0]
	var out []*tensors.Tensor
	for start := 0; start < dims[0]; start += size {
		end := min(start+size, dims[0])
		d := append([]int{end - start}, dims[1:]...)
		out = append(out, tensors.FromFlatDataAndDimensions(flat[start*row:end*row], d...))
	}
	return out
}
