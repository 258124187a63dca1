package main

import (
	"iter"

	"github.com/gomlx/gomlx/ml/train"
)

// iterPull turns a dataset's epoch iterator into a pull function.
func iterPull(ds train.Dataset) (func() (train.Batch, error, bool), func()) {
	return iter.Pull2(ds.Iter())
}
