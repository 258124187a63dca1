package training

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/support/exceptions"
)

// SmoothedCrossEntropy is Keras' CategoricalCrossentropy(label_smoothing=s) on softmax outputs,
// computed from logits: the one-hot labels [batch, classes] become labels*(1-s) + s/classes, and the
// loss is the batch mean of -sum(labels * log_softmax(logits)). (Keras clips probabilities to
// [1e-7, 1-1e-7] before the log; from logits no clipping is needed.) GoMLX has no label smoothing.
func SmoothedCrossEntropy(labels, logits *Node, smoothing float64) *Node {
	if labels.Rank() != 2 || logits.Rank() != 2 || labels.Shape().Dimensions[1] != logits.Shape().Dimensions[1] {
		exceptions.Panicf("SmoothedCrossEntropy: labels %s and logits %s must both be [batch, classes]", labels.Shape(), logits.Shape())
	}
	classes := float64(logits.Shape().Dimensions[1])
	y := ConvertDType(labels, logits.DType())
	if smoothing != 0 {
		y = AddScalar(MulScalar(y, 1-smoothing), smoothing/classes)
	}
	logProbs := LogSoftmax(logits, -1)
	return ReduceAllMean(Neg(ReduceSum(Mul(y, logProbs), -1)))
}

// LossFn returns SmoothedCrossEntropy as a GoMLX train.LossFn (labels[0] one-hot, predictions[0] logits).
func LossFn(smoothing float64) train.LossFn {
	return func(labels, predictions []*Node) *Node {
		return SmoothedCrossEntropy(labels[0], predictions[0], smoothing)
	}
}

// Accuracy is the fraction of examples whose argmax logit is the argmax of the one-hot label
// (Keras' "accuracy" for categorical labels).
func Accuracy(labels, logits *Node) *Node {
	hit := Equal(ArgMax(logits, -1), ArgMax(labels, -1))
	return ReduceAllMean(ConvertDType(hit, logits.DType()))
}

// accuracyMetric reports Accuracy for the last batch (the loop averages it host-side).
func accuracyMetric() metric.Interface {
	return metric.NewBaseMetric("accuracy", "acc", metric.AccuracyMetricType,
		func(_ *model.Scope, labels, predictions []*Node) *Node { return Accuracy(labels[0], predictions[0]) }, nil)
}
