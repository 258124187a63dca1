package densenet_test

// The README's DenseNet snippet, in a function that compiles with the tests (internal/readme).

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/densenet"
)

func readmeDenseNet(scope *model.Scope, images *Node) *Node {
	logits := densenet.New(scope, images).Preset("densenet121").Classes(2).Done() // or .Blocks(6, 12, 24, 16).Growth(32)
	return logits
}

var _ = readmeDenseNet
