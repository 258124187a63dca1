#!/usr/bin/env python3
"""Writes the real-photo training-step fixtures: the tutorial's two models trained on a batch of real
photos from Keras' initial weights, computed by an independent PyTorch implementation (tutorial_torch.py)
in float64 (the reference) and in float32 (PyTorch's own rounding error, which the Go test's tolerance
is measured against). TestPhotoParity* in ../photo_parity_test.go read them.

Why photos: the synthetic-noise fixture (gen_train_step_parity.py) could not see the pure-Go backend's
10% gradient error of 2026-12-01. Photos differ from noise where it matters: black borders and dark
patches that, through zero-initialised biases, put exact zeros at LeakyReLU and ReLU inputs; saturated
skies and flat regions that give max-pooling ties; batch-norm reductions over many rows of values with
a large common offset. So the photos below were chosen for black borders (Dog/2868, Cat/1500, Cat/2835),
saturated regions (Cat/947, Cat/1063, Dog/2352) and both (Dog/1773), plus one ordinary photo (Dog/5):
scored by the fraction of pixels with max(R,G,B) <= 2 or min(R,G,B) >= 253 over the first 600 photos of
each class of ../shared/data/petimages-dev (35% black for Dog/2868, 58% saturated for Cat/947).

The weights are Keras' initial ones: glorot-uniform kernels, zero biases and betas, unit gammas (a
zero bias is what turns a black patch into exact zeros). They are drawn from a portable generator
(splitmix64 seeded by the variable's path, photo_init below) that the Go test reimplements, so no
weights are stored.

Outputs (all in this folder):
  photos/<class>_<n>_<size>.png   the inputs: each photo resized from 180x180 with tf.image.resize's
                                  bilinear (PyTorch's, antialias off), rounded to uint8, lossless
  photo_parity_small.safetensors  the small configuration (64 -> 32, DenseNet blocks (2, 2), growth 8,
                                  resizer 4 filters and 1 residual block, batch 8): three SGD steps
                                  (learning rate 0.01, label smoothing 0.1); step-1 loss, logits and every
                                  gradient; losses of steps 1-3; every weight's change after 3 steps; every
                                  batch norm's moving statistics after 3 steps (Keras' rule: biased batch
                                  variance, moving = 0.99*moving + 0.01*batch).
  photo_parity_tutorial.safetensors  the tutorial's shapes (300 -> 150, DenseNet-121, resizer 16 filters,
                                  batch 2): step-1 loss, logits, and every gradient, in full for variables
                                  of at most 256 values, else at 256 indices drawn per variable (index/<path>)

Tensors are named <kind>64/<path> (float64 reference) and <kind>32/<path> (PyTorch float32). Run offline
with Debian's python3-torch, python3-pil and python3-numpy, from the repository root:

    /usr/bin/python3 training/testdata/gen_photo_parity.py [path/to/petimages-dev]
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

import tutorial_torch as tt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "densenet", "testdata"))
from gen_torchvision_safetensors import save_safetensors as write_safetensors  # noqa: E402  (the same writer)

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = [("Dog", 2868), ("Cat", 1500), ("Cat", 2835), ("Cat", 947), ("Cat", 1063), ("Dog", 2352), ("Dog", 1773), ("Dog", 5)]
TUTORIAL_PHOTOS = [("Dog", 2868), ("Cat", 947)]
SEED = 2026
LR, SMOOTHING, STEPS, SAMPLES = 0.01, 0.1, int(os.environ.get("STEPS", 3)), 256
SMALL = dict(input=64, target=32, batch=8, blocks=[2, 2], growth=8, filters=4, res_blocks=1, scope="densenet")
TUTORIAL = dict(input=300, target=150, batch=2, blocks=[6, 12, 24, 16], growth=32, filters=16, res_blocks=1, scope="densenet121")

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix_uniform(seed, n):
    """n doubles in [0, 1): splitmix64's outputs 1..n from seed, top 53 bits (exact in float64)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def photo_init(path, shape):
    """Keras' initial value of the variable (Keras layout shape), as float32 values in float64."""
    name = path.rsplit("/", 1)[1]
    n = int(np.prod(shape))
    if name in ("bias", "beta", "moving_mean"):
        return np.zeros(shape)
    if name in ("gamma", "moving_variance"):
        return np.ones(shape)
    receptive = int(np.prod(shape[:-2]))
    limit = np.sqrt(6.0 / (shape[-2] * receptive + shape[-1] * receptive))
    u = splitmix_uniform(SEED ^ fnv1a64(path), n)
    return ((2 * u - 1) * limit).astype(np.float32).astype(np.float64).reshape(shape)


def sample_indices(path, n):
    if n <= SAMPLES:
        return np.arange(n)
    u = splitmix_uniform(SEED ^ fnv1a64("sample:" + path), 4 * SAMPLES)
    idx = np.unique((u * n).astype(np.int64))
    return idx[:SAMPLES] if len(idx) >= SAMPLES else idx


def load_photos(root, photos, size):
    """uint8 [batch, size, size, 3] and labels (cat 0, dog 1); writes photos/*.png."""
    os.makedirs(os.path.join(HERE, "photos"), exist_ok=True)
    batch = []
    for cls, n in photos:
        img = np.asarray(Image.open(os.path.join(root, "PetImages", cls, f"{n}.jpg")).convert("RGB"))
        x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
        y = tt.resize(x, size)[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8)
        Image.fromarray(y).save(os.path.join(HERE, "photos", f"{cls.lower()}_{n}_{size}.png"), optimize=True)
        batch.append(y)
    return np.stack(batch), torch.tensor([0 if cls == "Cat" else 1 for cls, _ in photos])


class Models:
    """Both models of a configuration in one dtype, from photo_init, with Keras' moving statistics."""

    def __init__(self, cfg, dtype):
        self.resizer = tt.Resizer(cfg["target"], cfg["filters"], cfg["res_blocks"]).to(dtype)
        self.densenet = tt.DenseNet(cfg["blocks"], cfg["growth"]).to(dtype)
        self.params = list(tt.keras_params("learnable_resizer", self.resizer.named())) + \
            list(tt.keras_params(cfg["scope"], self.densenet.names))
        self.norms = list(tt.keras_batch_norms("learnable_resizer", self.resizer.named())) + \
            list(tt.keras_batch_norms(cfg["scope"], self.densenet.names))
        self.target, self.dtype = cfg["target"], dtype
        with torch.no_grad():
            for path, p, keras in self.params:
                v = torch.from_numpy(photo_init(path, list(keras(p).shape))).to(dtype)
                p.copy_(keras_inverse(path, v))
        self.moving = {}
        for prefix, m in self.norms:
            c = m.num_features
            self.moving[prefix + "moving_mean"] = torch.zeros(c, dtype=torch.float64)
            self.moving[prefix + "moving_variance"] = torch.ones(c, dtype=torch.float64)
            m.register_forward_pre_hook(self._hook(prefix))
        self.resizer.train()
        self.densenet.train()

    def _hook(self, prefix):
        def hook(_, inputs):
            with torch.no_grad():
                x = inputs[0]
                mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
                for key, v in (("moving_mean", mean), ("moving_variance", var)):
                    self.moving[prefix + key] = 0.99 * self.moving[prefix + key] + 0.01 * v.double()
        return hook

    def logits(self, name, pixels):
        x = torch.from_numpy(pixels).to(self.dtype).permute(0, 3, 1, 2) / 255
        return self.densenet(self.resizer(x) if name == "resizer" else tt.resize(x, self.target))

    def trainable(self, name):
        return [(path, p, keras) for path, p, keras in self.params if name == "resizer" or not path.startswith("/learnable_resizer/")]

    def moving_of(self, name):
        return {k: v for k, v in self.moving.items() if name == "resizer" or not k.startswith("/learnable_resizer/")}


def keras_inverse(path, v):
    """A Keras-layout value back to PyTorch's layout."""
    if path.endswith("/kernel"):
        return v.permute(3, 2, 0, 1) if v.dim() == 4 else v.t()
    return v


def stored(t, bits):
    """float32 results as F32 (exact, half the bytes), float64 ones as F64."""
    return t.float() if bits == "32" else t


def step(models, name, pixels, labels):
    """One SGD step: returns loss, logits and the gradients (Keras layout), and applies the update."""
    params = models.trainable(name)
    for _, p, _ in params:
        p.grad = None
    logits = models.logits(name, pixels)
    loss = tt.smoothed_cross_entropy(logits, labels, SMOOTHING)
    loss.backward()
    grads = {path: keras(p.grad).detach().double().clone() for path, p, keras in params}
    with torch.no_grad():
        for _, p, _ in params:
            p -= LR * p.grad
    return float(loss), logits.detach().double(), grads


def described(cfg):
    """The configuration as the fixtures' metadata gives it: the input as [height, width], as the noise
    fixture (gen_train_step_parity.py) does, so that the Go tests read both alike."""
    return dict(cfg, input=[cfg["input"], cfg["input"]])


def small_fixture(root):
    pixels, labels = load_photos(root, PHOTOS, SMALL["input"])
    out, meta = {}, {"config": described(SMALL), "photos": [f"{c}/{n}.jpg" for c, n in PHOTOS], "labels": labels.tolist(),
                     "seed": SEED, "steps": STEPS, "learning_rate": LR, "label_smoothing": SMOOTHING}
    for name in ("resizer", "baseline"):
        for dtype, bits in ((torch.float64, "64"), (torch.float32, "32")):
            models = Models(SMALL, dtype)
            start = {path: keras(p).detach().double().clone() for path, p, keras in models.trainable(name)}
            losses = []
            for k in range(STEPS):
                loss, logits, grads = step(models, name, pixels, labels)
                losses.append(loss)
                if k == 0:
                    out[f"{name}/logits{bits}"] = logits
                    for path, g in grads.items():
                        out[f"{name}/grad{bits}{path}"] = stored(g, bits)
            out[f"{name}/loss{bits}"] = torch.tensor(losses, dtype=torch.float64)
            for path, p, keras in models.trainable(name):
                out[f"{name}/update{bits}{path}"] = keras(p).detach().double() - start[path]
            for path, v in models.moving_of(name).items():
                out[f"{name}/moving{bits}{path}"] = v
            print(f"small {name} float{bits}: losses {losses}")
    save_safetensors(out, meta, os.path.join(HERE, "photo_parity_small.safetensors"))


def tutorial_fixture(root):
    pixels, labels = load_photos(root, TUTORIAL_PHOTOS, TUTORIAL["input"])
    out, meta = {}, {"config": described(TUTORIAL), "photos": [f"{c}/{n}.jpg" for c, n in TUTORIAL_PHOTOS],
                     "labels": labels.tolist(), "seed": SEED, "label_smoothing": SMOOTHING, "samples": SAMPLES}
    shapes = {}
    for name in ("resizer", "baseline"):
        for dtype, bits in ((torch.float64, "64"), (torch.float32, "32")):
            models = Models(TUTORIAL, dtype)
            loss, logits, grads = step(models, name, pixels, labels)
            out[f"{name}/loss{bits}"] = torch.tensor([loss], dtype=torch.float64)
            out[f"{name}/logits{bits}"] = logits
            for path, g in grads.items():
                flat = g.flatten()
                idx = sample_indices(path, flat.numel())
                shapes[path] = list(g.shape)
                out[f"{name}/grad{bits}{path}"] = stored(flat[torch.from_numpy(idx)], bits)
                if bits == "64":
                    out[f"{name}/index{path}"] = torch.from_numpy(idx).to(torch.int32)
            print(f"tutorial {name} float{bits}: loss {loss}")
    meta["shapes"] = shapes
    save_safetensors(out, meta, os.path.join(HERE, "photo_parity_tutorial.safetensors"))


def save_safetensors(tensors, meta, path):
    """densenet/testdata's safetensors writer, with the configuration in the header's __metadata__."""
    write_safetensors(tensors, path, {"fixture": json.dumps(meta, separators=(",", ":")),
                                      "generator": "gen_photo_parity.py", "torch": torch.__version__})
    print("wrote", path, f"{os.path.getsize(path)} bytes")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "data", "petimages-dev")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    small_fixture(root)
    tutorial_fixture(root)


if __name__ == "__main__":
    main()
