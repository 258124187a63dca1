package training

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

func TestSmoothedCrossEntropyByHand(t *testing.T) {
	// logits (2, 0) for a cat (label [1, 0]), smoothing 0.1: y = [0.95, 0.05];
	// log_softmax = [2 - log(e^2+1), -log(e^2+1)]; loss = -(0.95*lp0 + 0.05*lp1).
	lse := math.Log(math.Exp(2) + 1)
	want := -(0.95*(2-lse) + 0.05*(-lse))
	// second example: logits (0, 0), dog: loss = log 2 whatever the smoothing.
	want = (want + math.Log(2)) / 2
	b := testBackend(t)
	got := MustExecOnce(b, func(labels, logits *Node) *Node { return SmoothedCrossEntropy(labels, logits, 0.1) },
		[][]float32{{1, 0}, {0, 1}}, [][]float32{{2, 0}, {0, 0}})
	if d := math.Abs(float64(got.Value().(float32)) - want); d > 1e-6 {
		t.Errorf("loss %v, want %v", got.Value(), want)
	}
	acc := MustExecOnce(b, func(labels, logits *Node) *Node { return Accuracy(labels, logits) },
		[][]float32{{1, 0}, {0, 1}, {0, 1}}, [][]float32{{2, 0}, {3, 1}, {-1, 1}})
	if v := acc.Value().(float32); math.Abs(float64(v)-2.0/3) > 1e-6 {
		t.Errorf("accuracy %v, want 2/3", v)
	}
}
