package training

import (
	"errors"
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/models"
)

// Validation: loss and accuracy in inference mode, averaged over the examples.

// evaluator computes the validation loss and accuracy in inference mode (batch norm with its moving
// statistics), averaged over examples on the host.
//
// Not GoMLX's Trainer.EvalStep: on backends that prefer constants for variables (the pure-Go one),
// GoMLX v0.28 bakes every variable of an inference graph into the graph as a constant when the graph
// is built (model.Variable.paramNode). A cached evaluation graph would then keep evaluating the first
// epoch's weights, and its mean metrics, whose running totals are variables too, would report the
// last batch only. So the graph is stateless and, on such backends, rebuilt for each evaluation.
type evaluator struct {
	backend  compute.Backend
	store    *model.Store
	cfg      Config
	prefetch int
	exec     *model.Exec
	graphs   int // graphs built so far (the model function's calls)
}

func (e *evaluator) run(data train.Dataset) (loss, acc float64, err error) {
	if e.exec == nil || e.backend.Capabilities().PreferConstantsForVariables {
		if e.exec != nil {
			e.exec.Finalize()
		}
		modelFn := models.ModelFn(e.cfg.Model)
		e.exec, err = model.NewExec(e.backend, e.store, func(scope *model.Scope, x, labels *Node) (*Node, *Node) {
			e.graphs++
			logits := modelFn(scope, x)
			return SmoothedCrossEntropy(labels, logits, e.cfg.LabelSmoothing), Accuracy(labels, logits)
		})
		if err != nil {
			return 0, 0, fmt.Errorf("training: validation: %w", err)
		}
	}
	n := 0
	for batch, err := range devicePrefetch(e.backend, chunks(data.Iter(), EvalChunk), e.prefetch) {
		if err != nil {
			return 0, 0, fmt.Errorf("training: reading validation data: %w", err)
		}
		size, err := batchSize(batch)
		if err != nil {
			return 0, 0, fmt.Errorf("training: validation data: %w", err)
		}
		outs, err := e.exec.Exec(batch.Inputs[0], batch.Labels[0])
		_ = batch.Finalize()
		if err != nil {
			return 0, 0, fmt.Errorf("training: validation: %w", err)
		}
		loss += scalar(outs[0]) * float64(size)
		acc += scalar(outs[1]) * float64(size)
		n += size
	}
	if n == 0 {
		return 0, 0, errors.New("training: the validation data yielded no examples")
	}
	return loss / float64(n), acc / float64(n), nil
}
