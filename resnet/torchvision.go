package resnet

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/internal/torchfile"
)

// LoadTorchvision reads the weights of a torchvision ResNet with Bottleneck blocks (resnet50,
// resnet101, resnet152, or one of other stage sizes and widths) into store, as the variables of a
// ResNet built with Variant(Torchvision) and Name(name) (the preset's name, e.g. "resnet50", or
// "resnet" for a custom one). The Keras variant has other strides and convolution biases: the
// weights would load, and compute something else.
//
// The file is a state dict as practitioners have it: PyTorch's .pth (torchvision's downloads, e.g.
// resnet50-11ad3fa6.pth) or .safetensors (timm's "tv_in1k" ResNets use the same names). Names are
// mapped to Keras' (conv1 -> conv1_conv, bn1 -> conv1_bn, layer1.0.conv1 -> conv2_block1_1_conv,
// layer1.0.bn3 -> conv2_block1_3_bn, layer1.0.downsample.0/.1 -> conv2_block1_0_conv/_0_bn, fc ->
// predictions), convolution kernels from PyTorch's OIHW to HWIO, the classifier from [out, in] to
// [in, out], batch norms' running statistics into their moving averages (num_batches_tracked is
// ignored).
//
// The file must hold a whole network and nothing else: every name understood, every block of every
// stage complete, a downsample in the first block of each stage (this package's ResNet always
// projects there) and in no other; the error names the first tensor that is not. Variables already
// in store get the new values if their shapes match; the error names the tensor that does not, and
// leaves store unchanged. Files of ResNeXt or wide ResNets have the same names but other shapes:
// they load, and building a model of Filters' widths on them fails, naming the first variable
// whose shape differs (as does building a model of other widths or stage sizes than the file's).
func LoadTorchvision(store *model.Store, name, path string) error {
	return loadTorchvision(store, name, path, false)
}

// LoadTorchvisionBackbone is LoadTorchvision without the classifier (torchvision's "fc.*", Keras'
// "predictions"), for fine-tuning on other classes: the model built with Classes(n) gets a fresh
// classifier, initialised as usual, on the pretrained features.
func LoadTorchvisionBackbone(store *model.Store, name, path string) error {
	return loadTorchvision(store, name, path, true)
}

// loadTorchvision is LoadTorchvision and LoadTorchvisionBackbone. (One piece: read the file, map
// every torchvision name to its Keras variable, check shapes, then set them all or none.)
func loadTorchvision(store *model.Store, name, path string, skipClassifier bool) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("resnet.LoadTorchvision(%s): "+format, append([]any{path}, args...)...)
	}
	state, err := torchfile.Read(path)
	if err != nil {
		return fail("%w", err)
	}
	names := make([]string, 0, len(state))
	for n := range state {
		if skipClassifier && strings.HasPrefix(n, "fc.") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	type mapped struct {
		path    string
		convert torchfile.Converter
	}
	targets := map[string]mapped{}
	var blocks []int // blocks per stage, as far as the file's names tell
	for _, tname := range names {
		kpath, convert, stage, block, err := kerasPath(tname)
		if err != nil {
			return fail("tensor %q: %v", tname, err)
		}
		targets[tname] = mapped{kpath, convert}
		for stage >= len(blocks) {
			blocks = append(blocks, 0)
		}
		if stage >= 0 {
			blocks[stage] = max(blocks[stage], block+1)
		}
	}
	if len(targets) == 0 {
		return fail("no ResNet tensors in the file")
	}
	for s, count := range blocks {
		if count == 0 {
			return fail("no tensors of layer%d, though the file has layer%d", s+1, len(blocks))
		}
	}
	// The names a torchvision ResNet of these stage sizes has: the file must hold exactly these.
	want := expectedNames(blocks, !skipClassifier)
	wanted := map[string]bool{}
	for _, n := range want {
		wanted[n] = true
		if _, ok := targets[n]; !ok {
			hint := ""
			if strings.HasSuffix(n, ".conv3.weight") || strings.Contains(n, ".bn3.") {
				hint = " (a ResNet-18/34 file? their BasicBlocks have two convolutions; this package builds Bottleneck ResNets)"
			}
			return fail("no tensor %q: a torchvision ResNet with blocks %v has it%s", n, blocks, hint)
		}
	}
	if len(want) != len(targets) {
		for _, n := range names {
			if !wanted[n] {
				return fail("tensor %q is not part of a torchvision ResNet with blocks %v (a downsample belongs in the first block of a stage only)", n, blocks)
			}
		}
	}
	// Convert and check every tensor before changing the store, so that an error leaves it as it was.
	values := make([]*tensors.Tensor, len(names))
	for i, tname := range names {
		target := targets[tname]
		value, err := target.convert(state[tname])
		if err != nil {
			return fail("tensor %q: %w", tname, err)
		}
		full := "/" + name + "/" + target.path
		if v := store.GetVariable(full); v != nil && !v.Shape().Equal(value.Shape()) {
			return fail("tensor %q is %s in Keras layout, the model's %s is %s", tname, value.Shape(), full, v.Shape())
		}
		values[i] = value
	}
	for i, tname := range names {
		if err := torchfile.Assign(store, "/"+name+"/"+targets[tname].path, values[i]); err != nil {
			return fail("tensor %q: %w", tname, err)
		}
	}
	return nil
}

var (
	tvBlockLayer = regexp.MustCompile(`^layer(\d+)\.(\d+)\.(conv|bn)([123])\.(\w+)$`)
	tvDownsample = regexp.MustCompile(`^layer(\d+)\.(\d+)\.downsample\.([01])\.(\w+)$`)
	bnParams     = map[string]string{"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
)

// kerasPath maps a torchvision tensor name to the variable path under the ResNet's scope, with the
// conversion of its layout, and for the tensors of a block its stage and block (from 0; -1 for the
// stem and the classifier).
func kerasPath(tname string) (kpath string, convert torchfile.Converter, stage, block int, err error) {
	stage, block = -1, -1
	dot := strings.LastIndex(tname, ".")
	if dot < 0 {
		return "", nil, 0, 0, fmt.Errorf("not a torchvision ResNet name (conv1, bn1, layerN.M.*, fc)")
	}
	layer, param := tname[:dot], tname[dot+1:]
	var keras string
	switch {
	case layer == "conv1":
		keras = "conv1_conv"
	case layer == "bn1":
		keras = "conv1_bn"
	case layer == "fc":
		switch param {
		case "weight":
			return "predictions/kernel", torchfile.Transposed2D, -1, -1, nil
		case "bias":
			return "predictions/bias", torchfile.AsIs, -1, -1, nil
		}
		return "", nil, 0, 0, fmt.Errorf("unknown classifier parameter %q", param)
	default:
		var m []string
		var part string
		if m = tvBlockLayer.FindStringSubmatch(tname); m != nil {
			part = m[4] + "_" + m[3] // conv2 -> 2_conv, bn3 -> 3_bn
		} else if m = tvDownsample.FindStringSubmatch(tname); m != nil {
			part = map[string]string{"0": "0_conv", "1": "0_bn"}[m[3]]
		} else {
			return "", nil, 0, 0, fmt.Errorf("not a torchvision ResNet name (conv1, bn1, layerN.M.*, fc)")
		}
		// Digits (the patterns matched \d+), bounded so that a stray name cannot make the loader
		// expect millions of blocks.
		l, errL := strconv.Atoi(m[1])
		b, errB := strconv.Atoi(m[2])
		if errL != nil || errB != nil || l < 1 || l > 100 || b >= 1000 {
			return "", nil, 0, 0, fmt.Errorf("stage or block number out of range")
		}
		stage, block = l-1, b
		keras = fmt.Sprintf("conv%d_block%d_%s", l+1, b+1, part)
	}
	if strings.HasSuffix(keras, "_conv") {
		if param != "weight" {
			return "", nil, 0, 0, fmt.Errorf("unknown convolution parameter %q (torchvision's ResNet convolutions have no bias)", param)
		}
		return keras + "/kernel", torchfile.OIHWToHWIO, stage, block, nil
	}
	bn := bnParams[param]
	if bn == "" {
		return "", nil, 0, 0, fmt.Errorf("unknown batch-norm parameter %q", param)
	}
	return keras + "/" + bn, torchfile.AsIs, stage, block, nil
}

// expectedNames lists the tensors (batch counters aside) of a torchvision Bottleneck ResNet with
// these blocks per stage, whose first block of every stage has a downsample, with or without fc.
func expectedNames(blocks []int, classifier bool) []string {
	bn := func(prefix string) []string {
		return []string{prefix + ".weight", prefix + ".bias", prefix + ".running_mean", prefix + ".running_var"}
	}
	out := append([]string{"conv1.weight"}, bn("bn1")...)
	for s, count := range blocks {
		for b := range count {
			p := fmt.Sprintf("layer%d.%d", s+1, b)
			for k := 1; k <= 3; k++ {
				out = append(out, fmt.Sprintf("%s.conv%d.weight", p, k))
				out = append(out, bn(fmt.Sprintf("%s.bn%d", p, k))...)
			}
			if b == 0 {
				out = append(out, p+".downsample.0.weight")
				out = append(out, bn(p+".downsample.1")...)
			}
		}
	}
	if classifier {
		out = append(out, "fc.weight", "fc.bias")
	}
	return out
}
