"""An independent PyTorch implementation of the keras.io tutorial's two models (learnable resizer +
DenseNet, and plain bilinear resize + DenseNet), shared by the training-step fixture generators in this
folder (gen_train_step_parity.py on noise, gen_photo_parity.py on real photos).

Written from the tutorial's Keras code and Keras' DenseNet (not from the Go code): NCHW, PyTorch's own
convolutions, pooling, batch norm and interpolation. Parameters are exposed under the Keras variable
paths the Go models use (conv kernels HWIO, Dense [in, out]) by keras_params.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def resize(x, target):
    """tf.image.resize(bilinear, antialias=False): half-pixel centres, edge-clamped."""
    return F.interpolate(x, size=(target, target), mode="bilinear", align_corners=False, antialias=False)


def bn(c, eps):
    # Keras' momentum 0.99 is PyTorch's 0.01. (PyTorch's running_var is unbiased, Keras' moving variance
    # is not: generators that compare moving statistics compute them with KerasBatchStats.)
    return nn.BatchNorm2d(c, eps=eps, momentum=0.01)


class Resizer(nn.Module):
    """The tutorial's learnable resizer with filters f and res_blocks chained residual blocks."""

    def __init__(self, target, filters, res_blocks=1):
        super().__init__()
        f = filters
        self.target = target
        layers = [nn.Conv2d(3, f, 7, padding=3), nn.Conv2d(f, f, 1), bn(f, 1e-3)]                # conv2d, conv2d_1, bn
        for _ in range(res_blocks):
            layers += [nn.Conv2d(f, f, 3, padding=1, bias=False), bn(f, 1e-3),                   # residual block
                       nn.Conv2d(f, f, 3, padding=1, bias=False), bn(f, 1e-3)]
        layers += [nn.Conv2d(f, f, 3, padding=1, bias=False), bn(f, 1e-3),                       # projection
                   nn.Conv2d(f, 3, 7, padding=3)]
        self.layers = nn.ModuleList(layers)
        self.res_blocks = res_blocks

    def forward(self, x):
        m = list(self.layers)
        c0, c1, b0 = m[:3]
        naive = resize(x, self.target)
        h = b0(F.leaky_relu(c1(F.leaky_relu(c0(x), 0.2)), 0.2))
        bottleneck = resize(h, self.target)
        r = bottleneck
        for k in range(self.res_blocks):
            ca, ba, cb, bb = m[3 + 4 * k:7 + 4 * k]
            r = r + bb(cb(F.leaky_relu(ba(ca(r)), 0.2)))
        cp, bp, cl = m[-3:]
        r = bp(cp(r)) + bottleneck
        return cl(r) + naive

    def named(self):
        convs = bns = 0
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                yield ("conv2d" if convs == 0 else f"conv2d_{convs}"), m
                convs += 1
            else:
                yield ("batch_normalization" if bns == 0 else f"batch_normalization_{bns}"), m
                bns += 1


class DenseNet(nn.Module):
    """Keras' DenseNet (ZeroPadding 3 + 7x7/2 stem, 3x3/2 max pool, dense blocks of BN-ReLU-1x1-BN-ReLU-3x3,
    transitions BN-ReLU-1x1-AvgPool2x2/2 with compression 0.5, BN-ReLU-GAP-Dense head), epsilon 1.001e-5."""

    def __init__(self, blocks, growth, classes=2):
        super().__init__()
        eps = 1.001e-5
        self.conv1_conv = nn.Conv2d(3, 64, 7, stride=2, bias=False)
        self.conv1_bn = bn(64, eps)
        self.dense = nn.ModuleList()
        self.trans = nn.ModuleList()
        c = 64
        names = [("conv1_conv", self.conv1_conv), ("conv1_bn", self.conv1_bn)]
        for i, n in enumerate(blocks):
            block = nn.ModuleList()
            for j in range(n):
                p = f"conv{i + 2}_block{j + 1}"
                layer = nn.ModuleList([bn(c, eps), nn.Conv2d(c, 4 * growth, 1, bias=False), bn(4 * growth, eps),
                                       nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)])
                names += [(p + "_0_bn", layer[0]), (p + "_1_conv", layer[1]), (p + "_1_bn", layer[2]), (p + "_2_conv", layer[3])]
                block.append(layer)
                c += growth
            self.dense.append(block)
            if i < len(blocks) - 1:
                t = nn.ModuleList([bn(c, eps), nn.Conv2d(c, c // 2, 1, bias=False)])
                names += [(f"pool{i + 2}_bn", t[0]), (f"pool{i + 2}_conv", t[1])]
                self.trans.append(t)
                c //= 2
        self.bn = bn(c, eps)
        self.predictions = nn.Linear(c, classes)
        names += [("bn", self.bn), ("predictions", self.predictions)]
        self.names = names

    def forward(self, x):
        x = F.relu(self.conv1_bn(self.conv1_conv(F.pad(x, (3, 3, 3, 3)))))
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
        for i, block in enumerate(self.dense):
            for b0, c1, b1, c2 in block:
                y = c2(F.relu(b1(c1(F.relu(b0(x))))))
                x = torch.cat([x, y], 1)
            if i < len(self.trans):
                b, c = self.trans[i]
                x = F.avg_pool2d(c(F.relu(b(x))), 2, 2)
        x = F.relu(self.bn(x)).mean((2, 3))
        return self.predictions(x)


def keras_params(prefix, named):
    """(path, tensor, to_keras) for every trainable parameter, in Keras layout."""
    for name, m in named:
        base = f"/{prefix}/{name}/"
        if isinstance(m, nn.Conv2d):
            yield base + "kernel", m.weight, lambda t: t.permute(2, 3, 1, 0)
            if m.bias is not None:
                yield base + "bias", m.bias, lambda t: t
        elif isinstance(m, nn.BatchNorm2d):
            yield base + "gamma", m.weight, lambda t: t
            yield base + "beta", m.bias, lambda t: t
        else:
            yield base + "kernel", m.weight, lambda t: t.t()
            yield base + "bias", m.bias, lambda t: t


def keras_batch_norms(prefix, named):
    """(path prefix, module) of every batch norm, for its moving statistics."""
    for name, m in named:
        if isinstance(m, nn.BatchNorm2d):
            yield f"/{prefix}/{name}/", m


def smoothed_cross_entropy(logits, labels, smoothing=0.1):
    """Keras' CategoricalCrossentropy(label_smoothing) on softmax outputs, batch mean."""
    y = F.one_hot(labels, logits.shape[-1]).to(logits.dtype) * (1 - smoothing) + smoothing / logits.shape[-1]
    return -(y * F.log_softmax(logits, -1)).sum(-1).mean()
