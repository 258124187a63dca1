// Package datasets loads the data of the keras.io tutorial "Learning to Resize Images for Computer
// Vision Tasks" (https://keras.io/examples/vision/learnable_resizer/) the way the tutorial gets it
// from TensorFlow Datasets, and feeds it to a GoMLX trainer fast enough to keep an accelerator busy.
//
// The tutorial runs
//
//	train_ds, validation_ds = tfds.load("cats_vs_dogs", split=["train[:40%]", "train[40%:50%]"], as_supervised=True)
//	... .shuffle(BATCH_SIZE * 100).map(resize to 300x300 + one_hot(label, 2)).batch(64).prefetch(AUTOTUNE)
//
// and the Go equivalent is
//
//	src, err := datasets.CatsVsDogs(ctx, datasets.CatsVsDogsOptions{Progress: os.Stderr}) // or OpenCatsVsDogs(zipOrFolder, ...)
//	prep, err := datasets.Prepare(ctx, src, []string{"train[:40%]", "train[40%:50%]"}, datasets.PrepareOptions{Progress: os.Stderr})
//	train, err := prep.Split("train[:40%]")        // 9,305 examples, as TFDS
//	val, err := prep.Split("train[40%:50%]")       // 2,326
//	trainLoader, err := train.Loader(datasets.LoaderOptions{BatchSize: 64, Shuffle: true, Seed: 1})
//	valLoader, err := val.Loader(datasets.LoaderOptions{BatchSize: 64})
//	trainDS := trainLoader.Dataset("train")         // a GoMLX train.Dataset
//
// # Stages
//
//   - Sources (source.go) list labelled files: cats_vs_dogs from the Microsoft zip (downloaded with
//     resume and SHA-256 verification, download.go) or an extracted PetImages/ folder, with TFDS's
//     rules (member names PetImages/{Cat,Dog}/<n>.jpg; cat=0, dog=1; files without "JFIF" near
//     their start dropped: 1,738 of 25,000 on the real zip, keeping 23,262); or any folder with one
//     sub-folder per class (OpenImageFolder, as Keras's image_dataset_from_directory).
//   - Splits (split.go) are TFDS expressions over the source's fixed order, with TFDS's rounding.
//   - Prepare (prepare.go) decodes (decode.go: JPEG, PNG, GIF, BMP by magic bytes) and resizes
//     (hostresize.go: tf.image.resize's weights, from resample.NewTaps) on every core, once,
//     into an on-disk cache of uint8 pixels (cache.go) that later runs reuse.
//   - Loaders (pipeline.go) iterate a split from the cache: tf.data's shuffle buffer, batches,
//     one-hot labels, background prefetch; Batch.Tensors and Loader.Dataset (gomlx.go) hand batches to
//     GoMLX.
//   - ExportSplit (export.go) copies a split's original files into a folder with the source's
//     layout, so another framework can train on exactly the same examples.
//
// Bad input never stops a run: every file that cannot be an example is skipped and counted under a
// SkipReason (ignored, unreadable, empty, no_jfif, not_image, too_large, unsupported, corrupt), see
// Source.Skipped and Prepared.Report. Errors are returned for what the caller must fix (a missing
// folder, a failed download, a full disk).
//
// # Differences from TFDS and tf.data
//
//   - Example order. TFDS fixes the order of cats_vs_dogs when it generates the dataset; it cannot
//     be reproduced without TFDS. We use the sorted file list permuted with a seeded Fisher-Yates
//     shuffle (SourceOptions.OrderSeed). Split sizes equal TFDS's (train[:40%] = 9,305 and
//     train[40%:50%] = 2,326 of 23,262), split members do not.
//   - The JFIF rule searches the first 512 bytes, not 10: TFDS's code says fobj.peek(10), but
//     CPython's ZipExtFile.peek returns up to 512 buffered bytes, and TFDS checks its count of 1,738
//     skipped files under that behaviour (see DefaultJFIFWindow; JFIFWindow: 10 gives the literal
//     reading). Zero-byte files, which TFDS's rule also drops, are counted as "empty".
//   - No re-encoding. TFDS 4.0.1 decodes every image and re-encodes it with tf.io.encode_jpeg
//     (quality 95) when it builds the dataset, so what it serves has been JPEG-compressed twice. We
//     decode the original files once.
//   - JPEG decoder. Go's image/jpeg, not libjpeg-turbo: IDCT rounding differs by a level or two,
//     chroma is replicated rather than interpolated ("fancy upsampling"), and arithmetic-coded or
//     12-bit JPEGs are not supported. A file that libjpeg decodes despite damage ("Corrupt JPEG
//     data" warnings) but Go rejects is skipped as corrupt and counted; it still counts in split
//     boundaries, so a split can hold fewer examples than TFDS's (Split.Len vs Split.Requested).
//     EXIF orientation is ignored, as TensorFlow does. Alpha is dropped without compositing, as
//     decode_image(channels=3) does; GIFs give their first frame.
//   - Resize and dtype. Bilinear (or any resample.Method) with tf.image.resize's exact weights, but the
//     result is rounded to uint8 instead of kept as float32 (at most 0.5/255 away), and images reach
//     the model as uint8 (the model scales by 1/255): 4x fewer bytes to the accelerator. Labels are
//     one-hot float32, as tf.one_hot.
//   - Preprocessing happens once. The tutorial's map(resize) runs every epoch; here images are
//     decoded and resized once into a cache (like .map().cache()), which gives identical pixels since
//     the tutorial has no random augmentation.
//   - Shuffle. Same buffer semantics and default size (batch*100), a different generator: the order
//     is reproducible from LoaderOptions.Seed (epoch e uses Seed+e), not equal to TensorFlow's.
//   - Prefetch has a fixed depth (default 2) instead of AUTOTUNE; image reads of a batch run on all
//     cores. The last partial batch is kept, as Keras does (DropRemainder drops it).
//   - Splits support TFDS's default "closest" rounding, negative and decimal-percent boundaries and
//     "+"; not "(pct1_dropremainder)", shard slices, or a slice mixing % and absolute boundaries.
//   - Image folders skip hidden sub-folders (".ipynb_checkpoints"), which Keras would take as classes.
package datasets
