package plots

import (
	"fmt"
	"image"

	"github.com/learnresize/learnresize/resizer"
)

// ResizerPairs runs the resizer on each input image (pixels scaled to [0, 1], as the tutorial's
// Rescaling layer does) and pairs the input with the output, mapped for display by mp.
func ResizerPairs(m *resizer.Model, inputs []image.Image, mp Mapping) ([]Pair, error) {
	pairs := make([]Pair, 0, len(inputs))
	for i, in := range inputs {
		_, raw, err := m.ResizeImage(in)
		if err != nil {
			return nil, fmt.Errorf("plots: image %d: %w", i, err)
		}
		img, clipped, err := mp.ToImage(raw)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, Pair{Input: in, Resized: img, Clipped: clipped})
	}
	return pairs, nil
}
