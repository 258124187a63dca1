package resizer_test

// The README's Go snippets about the resizer, in functions that compile with the tests
// (internal/readme checks that every Go block of the README appears in such a file).

import (
	"fmt"
	"image"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/resizer"
)

// readmeLoad is "The resizer API": load a trained resizer and resize an image.
func readmeLoad(img image.Image) error {
	b, info, err := backend.New() // picks the backend; fmt.Println(info) says what runs where
	if err != nil {
		return err
	}
	m, err := resizer.Load(b, "runs/compare/resizer-seed42") // a run folder (its latest checkpoint) or a checkpoint folder
	if err != nil {
		return err
	}
	out, raw, err := m.ResizeImage(img) // any image.Image, any size: to the training input size, then the target size
	// out: image.Image (values clipped to [0,1]); raw: float32 [h, w, 3] tensor, unclipped
	if err != nil {
		return err
	}
	fmt.Println(info, out.Bounds(), raw.Shape())
	return nil
}

// readmeLayer is the layer and the op inside a GoMLX model.
func readmeLayer(scope *model.Scope, images *Node) (*Node, *Node) {
	y := resizer.New(scope, images).Target(150, 150).Filters(16).ResBlocks(1).
		Interpolation(resizer.Bilinear).Done() // images: [batch, H, W, 3], any H and W
	z := resizer.Resize(images, 150, 150, resizer.Bicubic) // tf.image.resize (bicubic), differentiable
	return y, z
}

var _, _ = readmeLoad, readmeLayer
