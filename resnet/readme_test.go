package resnet_test

// The README's ResNet snippet, in a function that compiles with the tests (internal/readme).

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/resnet"
)

func readmeResNet(scope *model.Scope, images *Node) *Node {
	logits := resnet.New(scope, images).Preset("resnet50").Classes(2).Done() // Keras' ResNet50; .Variant(resnet.Torchvision) for torchvision's
	return logits
}

var _ = readmeResNet
