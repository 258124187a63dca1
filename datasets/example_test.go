package datasets_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/resample"
)

// The tutorial's two splits of cats_vs_dogs, whose 23,262 examples TFDS keeps.
func ExampleParseSplit() {
	for _, expr := range []string{"train[:40%]", "train[40%:50%]"} {
		spec, err := datasets.ParseSplit(expr)
		if err != nil {
			log.Fatal(err)
		}
		ranges, _ := spec.Ranges(23262)
		n, _ := spec.Len(23262)
		fmt.Printf("%s: %v, %d examples\n", expr, ranges, n)
	}
	// Output:
	// train[:40%]: [{0 9305}], 9305 examples
	// train[40%:50%]: [{9305 11631}], 2326 examples
}

// Bilinear upsampling of one row of two pixels to four, as tf.image.resize does it.
func ExampleHostResizer() {
	rz, err := datasets.NewHostResizer(resample.Bilinear, 1, 4)
	if err != nil {
		log.Fatal(err)
	}
	dst := make([]uint8, 4)
	if err := rz.Resize(dst, []uint8{0, 200}, 1, 2, 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println(dst)
	// Output: [0 50 150 200]
}

// writeTinyFolder writes a folder of 8 solid-colour 6x4 PNG images, 4 per class.
func writeTinyFolder(root string) {
	for i := range 8 {
		class := []string{"cat", "dog"}[i%2]
		img := image.NewNRGBA(image.Rect(0, 0, 6, 4))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = uint8(30*i), 100, 200, 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			log.Fatal(err)
		}
		path := filepath.Join(root, class, fmt.Sprintf("%d.png", i))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	// A stray file: counted and skipped, not fatal.
	if err := os.WriteFile(filepath.Join(root, "dog", "notes.jpg"), []byte("not an image"), 0o644); err != nil {
		log.Fatal(err)
	}
}

// The whole pipeline on a folder of images: list, split as TFDS does, decode and resize once into
// a cache, then iterate shuffled uint8 batches with one-hot labels.
func Example() {
	root, _ := os.MkdirTemp("", "learnresize-example")
	defer func() { _ = os.RemoveAll(root) }()
	writeTinyFolder(filepath.Join(root, "images"))

	src, err := datasets.OpenImageFolder(filepath.Join(root, "images"), datasets.SourceOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	prep, err := datasets.Prepare(context.Background(), src, []string{"train[:75%]", "train[75%:]"},
		datasets.PrepareOptions{Height: 5, Width: 5, CacheDir: filepath.Join(root, "cache")})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = prep.Close() }()
	fmt.Println("classes:", prep.Classes(), "skipped:", prep.Report())

	train, _ := prep.Split("train[:75%]")
	val, _ := prep.Split("train[75%:]")
	// Split sizes are computed on the 9 listed files as TFDS would (7 and 2); the stray file fell in
	// the validation split and was skipped when decoding.
	fmt.Printf("train: %d of %d, validation: %d of %d\n", train.Len(), train.Requested(), val.Len(), val.Requested())

	loader, err := train.Loader(datasets.LoaderOptions{BatchSize: 4, Shuffle: true, Seed: 42})
	if err != nil {
		log.Fatal(err)
	}
	for batch, err := range loader.Batches(context.Background(), 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("batch of %d: %d bytes of uint8 pixels, labels %v\n", batch.Size, len(batch.Images), batch.Labels)
		batch.Release()
	}
	// Output:
	// classes: [cat dog] skipped: not_image=1
	// train: 7 of 7, validation: 1 of 2
	// batch of 4: 300 bytes of uint8 pixels, labels [1 0 0 1 1 0 1 0]
	// batch of 3: 225 bytes of uint8 pixels, labels [1 0 0 1 0 1]
}

// A batch as GoMLX tensors: images stay uint8 (the model scales by 1/255), labels are one-hot.
func ExampleBatch_Tensors() {
	batch := &datasets.Batch{
		Images: make([]uint8, 2*3*3*3), Labels: []float32{1, 0, 0, 1}, ClassIDs: []int32{0, 1},
		Size: 2, Height: 3, Width: 3, Channels: 3, NumClasses: 2,
	}
	images, labels, err := batch.Tensors()
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = images.FinalizeAll(); _ = labels.FinalizeAll() }()
	fmt.Println(images.Shape(), labels.Shape())
	// Output: (Uint8)[2, 3, 3, 3] (Float32)[2, 2]
}

// TFDS's rule keeps cats_vs_dogs files with "JFIF" near their start; other files are skipped and
// counted, never fatal.
func ExampleOpenCatsVsDogs() {
	root, _ := os.MkdirTemp("", "learnresize-example")
	defer func() { _ = os.RemoveAll(root) }()
	jfif := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
	files := map[string][]byte{
		"PetImages/Cat/0.jpg":     jfif, // kept (decoding happens later, in Prepare)
		"PetImages/Cat/1.jpg":     []byte("\xff\xd8\xff\xe1 Exif only"),
		"PetImages/Dog/0.jpg":     jfif,
		"PetImages/Dog/1.jpg":     {},
		"PetImages/Dog/Thumbs.db": []byte("x"),
	}
	for name, data := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		_ = os.WriteFile(path, data, 0o644)
	}
	src, err := datasets.OpenCatsVsDogs(root, datasets.SourceOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(src.Len(), "examples; skipped:", src.Skipped())
	// Output: 2 examples; skipped: empty=1 ignored=1 no_jfif=1
}
