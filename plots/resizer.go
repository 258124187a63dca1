package plots

import (
	"fmt"
	"image"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/resizer"
)

// ResizerPairs runs the resizer on each input image (pixels scaled to [0, 1], as the tutorial's
// Rescaling layer does) and pairs the input with the output, mapped for display by mp. The mapping
// is resolved once against all the outputs (Mapping.Resolve) and the same one is applied to every
// pair, so that the panels are comparable; it is returned for the figure's caption, e.g.
//
//	pairs, mapping, err := plots.ResizerPairs(m, images, plots.Auto)
//	fig, err := plots.ImageGrid(pairs, "trained resizer; output "+mapping.String())
func ResizerPairs(m *resizer.Model, inputs []image.Image, mp Mapping) ([]Pair, Mapping, error) {
	outputs := make([]*tensors.Tensor, len(inputs))
	for i, in := range inputs {
		_, raw, err := m.ResizeImage(in)
		if err != nil {
			return nil, Mapping{}, fmt.Errorf("plots: image %d: %w", i, err)
		}
		outputs[i] = raw
	}
	mp, err := mp.Resolve(outputs...)
	if err != nil {
		return nil, Mapping{}, err
	}
	pairs := make([]Pair, 0, len(inputs))
	for i, raw := range outputs {
		img, clipped, err := mp.ToImage(raw)
		if err != nil {
			return nil, Mapping{}, err
		}
		pairs = append(pairs, Pair{Input: inputs[i], Resized: img, Clipped: clipped})
	}
	return pairs, mp, nil
}
