package models_test

// The README's models snippet, in a function that compiles with the tests (internal/readme).

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/models"
)

func readmeModels(scope *model.Scope, pixels *Node) (*Node, error) {
	logits := models.Build(scope, pixels, models.Tutorial(), nil) // with the learnable resizer; models.Tutorial().Baseline(): plain resize
	s, err := models.Summary(models.Tutorial(), false)            // Keras-style summary
	fmt.Print(s)
	return logits, err
}

var _ = readmeModels
