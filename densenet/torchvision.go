package densenet

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/internal/torchfile"
)

// LoadTorchvision reads the weights of a torchvision DenseNet into store, as the variables of a
// DenseNet built with Name(name) (the preset's name, e.g. "densenet121", or "densenet" for custom
// blocks). The file is a state dict as practitioners have it: PyTorch's .pth (torchvision's own
// downloads, e.g. densenet121-a639ec97.pth, whose legacy names "norm.1" are read as "norm1") or
// .safetensors (timm's "tv_in1k" DenseNets use the same names). Names are mapped to Keras' (conv1_conv,
// conv2_block1_1_conv, pool2_bn, ..., predictions), convolution kernels from PyTorch's OIHW to HWIO,
// the classifier from [out, in] to [in, out], batch norms' running statistics into their moving
// averages. Every tensor must be used (num_batches_tracked aside) and every name understood; the error
// names the first that is not. Variables already in store get the new values if their shapes match.
//
// torchvision's batch norms use epsilon 1e-5, this package Keras' 1.001e-5: logits move by ~1e-6.
func LoadTorchvision(store *model.Store, name, path string) error {
	return loadTorchvision(store, name, path, false)
}

// LoadTorchvisionBackbone is LoadTorchvision without the classifier (torchvision's "classifier.*",
// Keras' "predictions"), for fine-tuning on other classes: the model built with Classes(n) gets a
// fresh classifier, initialised as usual, on the pretrained features.
func LoadTorchvisionBackbone(store *model.Store, name, path string) error {
	return loadTorchvision(store, name, path, true)
}

func loadTorchvision(store *model.Store, name, path string, skipClassifier bool) error {
	state, err := torchfile.Read(path)
	if err != nil {
		return fmt.Errorf("densenet.LoadTorchvision(%s): %w", path, err)
	}
	names := make([]string, 0, len(state))
	for n := range state {
		names = append(names, n)
	}
	sort.Strings(names)
	loaded := 0
	for _, tname := range names {
		if skipClassifier && strings.HasPrefix(tname, "classifier.") {
			continue
		}
		kpath, convert, err := kerasPath(legacyName.ReplaceAllString(tname, "$1$2"))
		if err != nil {
			return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q: %w", path, tname, err)
		}
		value, err := convert(state[tname])
		if err != nil {
			return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q: %w", path, tname, err)
		}
		if err := torchfile.Assign(store, "/"+name+"/"+kpath, value); err != nil {
			return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q: %w", path, tname, err)
		}
		loaded++
	}
	if loaded == 0 {
		return fmt.Errorf("densenet.LoadTorchvision(%s): no DenseNet tensors in the file", path)
	}
	return nil
}

// legacyName matches the names of torchvision's published DenseNet files ("denselayer1.norm.1.weight"),
// which torchvision itself renames when it loads them ("denselayer1.norm1.weight").
var legacyName = regexp.MustCompile(`^(.*denselayer\d+\.(?:norm|relu|conv))\.(\d\.(?:weight|bias|running_mean|running_var))$`)

var (
	tvDenseLayer = regexp.MustCompile(`^features\.denseblock(\d+)\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)\.(\w+)$`)
	tvTransition = regexp.MustCompile(`^features\.transition(\d+)\.(norm|conv)\.(\w+)$`)
	tvFixed      = map[string]string{"features.conv0": "conv1_conv", "features.norm0": "conv1_bn", "features.norm5": "bn"}
)

// kerasPath maps a torchvision tensor name to the variable path under the DenseNet's scope, with the
// conversion of its layout.
func kerasPath(tname string) (string, torchfile.Converter, error) {
	dot := strings.LastIndex(tname, ".")
	if dot < 0 {
		return "", nil, fmt.Errorf("not a torchvision DenseNet name")
	}
	layer, param := tname[:dot], tname[dot+1:]
	var keras string
	switch {
	case tvFixed[layer] != "":
		keras = tvFixed[layer]
	case layer == "classifier":
		switch param {
		case "weight":
			return "predictions/kernel", torchfile.Transposed2D, nil
		case "bias":
			return "predictions/bias", torchfile.AsIs, nil
		}
		return "", nil, fmt.Errorf("unknown classifier parameter %q", param)
	default:
		if m := tvDenseLayer.FindStringSubmatch(tname); m != nil {
			part := map[string]string{"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}[m[3]]
			block, _ := strconv.Atoi(m[1]) // digits: the pattern matched \d+
			keras = fmt.Sprintf("conv%d_block%s_%s", block+1, m[2], part)
		} else if m := tvTransition.FindStringSubmatch(tname); m != nil {
			part := map[string]string{"norm": "bn", "conv": "conv"}[m[2]]
			transition, _ := strconv.Atoi(m[1])
			keras = fmt.Sprintf("pool%d_%s", transition+1, part)
		} else {
			return "", nil, fmt.Errorf("not a torchvision DenseNet name")
		}
	}
	if strings.HasSuffix(keras, "_conv") {
		if param != "weight" {
			return "", nil, fmt.Errorf("unknown convolution parameter %q (the DenseNet's convolutions have no bias)", param)
		}
		return keras + "/kernel", torchfile.OIHWToHWIO, nil
	}
	bn := map[string]string{"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}[param]
	if bn == "" {
		return "", nil, fmt.Errorf("unknown batch-norm parameter %q", param)
	}
	return keras + "/" + bn, torchfile.AsIs, nil
}
