package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"

	"github.com/learnresize/learnresize/plots"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// saveFigures writes the notebook's figures for finished runs into dir: training curves of every
// series (curves.png/.svg), and, when resizerRun is a learnable-resizer run, the tutorial's grid of
// validation images and their learned resizes (resizer_grid.png; the outputs mapped for display by
// plots.Auto, chosen from them, as learnresize resize does by default, and the caption says how).
//
// It lists the files on one line of stdout, after them more: figures the caller has written.
func saveFigures(b compute.Backend, dir string, series []plots.Series, resizerRun string, data *training.OpenedData, stdout io.Writer,
	more ...string) error {
	curves, err := plots.Curves(series)
	if err != nil {
		return err
	}
	written := []string{filepath.Join(dir, "curves.png"), filepath.Join(dir, "curves.svg")}
	for _, p := range written {
		if err := curves.Save(p); err != nil {
			return err
		}
	}
	if resizerRun != "" {
		m, err := resizer.Load(b, resizerRun) // the run's latest checkpoint
		if err != nil {
			return err
		}
		images, err := data.ValImages(6)
		if err != nil {
			return err
		}
		pairs, mapping, err := plots.ResizerPairs(m, images, plots.Auto) // one mapping for the six, from their outputs
		if err != nil {
			return err
		}
		grid, err := plots.ImageGrid(pairs, "trained resizer; output "+mapping.String())
		if err != nil {
			return err
		}
		p := filepath.Join(dir, "resizer_grid.png")
		if err := grid.Save(p); err != nil {
			return err
		}
		written = append(written, p)
	}
	fmt.Fprintf(stdout, "Figures: %s\n", strings.Join(append(written, more...), ", "))
	return nil
}
