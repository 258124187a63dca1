package training_test

// The README's training snippet, in a function that compiles with the tests (internal/readme).

import (
	"context"
	"fmt"
	"os"

	"github.com/gomlx/compute"

	"github.com/learnresize/learnresize/training"
)

func readmeTraining(ctx context.Context, b compute.Backend) error {
	cfg := training.Default() // the tutorial's hyperparameters

	data, err := training.OpenData(ctx, cfg, training.DataOptions{Path: "PetImages"}) // or "" to download
	if err != nil {
		return err
	}
	defer data.Close()
	hist, err := training.Fit(ctx, b, cfg, data.Data, training.Options{Dir: "runs/one", Log: os.Stderr})
	if err != nil {
		return err
	}
	cmp, err := training.Compare(ctx, b, cfg, data.Data, []int64{1, 2, 3}, training.CompareOptions{Dir: "runs/cmp"})
	if err != nil {
		return err
	}
	fmt.Print(cmp.Markdown())
	fmt.Println(hist.Last())
	return nil
}

var _ = readmeTraining
