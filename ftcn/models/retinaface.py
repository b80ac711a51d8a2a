"""RetinaFace with the MobileNet-0.25 backbone, test phase (the official FTCN video script's face detector).

Layout and names follow the widely used Pytorch_Retinaface code that produced ``mobilenet0.25_Final.pth``, so the
official weights load with ``strict=True``. The network returns raw regressions; priors, decoding and NMS live in
:mod:`ftcn.models.box_ops`, and :func:`detect` ties them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ftcn.models import box_ops

# Mean pixel subtracted by the official preprocessing (no scaling). The network was trained on BGR images.
RETINAFACE_MEAN = (104.0, 117.0, 123.0)


@dataclass(frozen=True)
class RetinaFaceConfig:
    """Anchors and post-processing of the official mobilenet0.25 configuration and video script."""

    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    confidence_threshold: float = 0.02
    top_k: int = 5000
    nms_threshold: float = 0.4
    keep_top_k: int = 750


def _conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True)
    )


def _conv_bn_no_relu(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup))


def _conv_bn_1x1(inp: int, oup: int, leaky: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True)
    )


def _conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(leaky, inplace=True),
    )


class MobileNetV1Body(nn.Module):
    """MobileNet-0.25 up to its third stage (the official code keeps only stage1..3 via IntermediateLayerGetter)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2, leaky=0.1),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = _conv_bn_1x1(in_channels[0], out_channels, leaky)
        self.output2 = _conv_bn_1x1(in_channels[1], out_channels, leaky)
        self.output3 = _conv_bn_1x1(in_channels[2], out_channels, leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        out1, out2, out3 = self.output1(inputs[0]), self.output2(inputs[1]), self.output3(inputs[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    """Single-stage headless context module: 3x3, "5x5" and "7x7" branches made of stacked 3x3 convs."""

    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channel <= 64 else 0.0
        self.conv3X3 = _conv_bn_no_relu(in_channel, out_channel // 2)
        self.conv5X5_1 = _conv_bn(in_channel, out_channel // 4, leaky=leaky)
        self.conv5X5_2 = _conv_bn_no_relu(out_channel // 4, out_channel // 4)
        self.conv7X7_2 = _conv_bn(out_channel // 4, out_channel // 4, leaky=leaky)
        self.conv7x7_3 = _conv_bn_no_relu(out_channel // 4, out_channel // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5_1 = self.conv5X5_1(x)
        out = torch.cat(
            [self.conv3X3(x), self.conv5X5_2(branch5_1), self.conv7x7_3(self.conv7X7_2(branch5_1))], dim=1
        )
        return F.relu(out)


class _AnchorHead(nn.Module):
    """A 1x1 conv predicting ``values_per_anchor`` numbers for each of the anchors at every position."""

    def __init__(self, in_channels: int, num_anchors: int, values_per_anchor: int) -> None:
        super().__init__()
        self.values_per_anchor = values_per_anchor
        self.conv1x1 = nn.Conv2d(in_channels, num_anchors * values_per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values_per_anchor)


class RetinaFace(nn.Module):
    """Test-phase RetinaFace: ``forward`` returns (loc [B,P,4], softmaxed conf [B,P,2], landms [B,P,10])."""

    def __init__(self, cfg: RetinaFaceConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or RetinaFaceConfig()
        out_channels, anchors = 64, 2
        self.body = MobileNetV1Body()
        self.fpn = FPN((64, 128, 256), out_channels)
        self.ssh1 = SSH(out_channels, out_channels)
        self.ssh2 = SSH(out_channels, out_channels)
        self.ssh3 = SSH(out_channels, out_channels)
        self.ClassHead = nn.ModuleList(_AnchorHead(out_channels, anchors, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_AnchorHead(out_channels, anchors, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_AnchorHead(out_channels, anchors, 10) for _ in range(3))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.fpn(self.body(images))
        features = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, features)], dim=1)
        conf = torch.cat([head(f) for head, f in zip(self.ClassHead, features)], dim=1)
        landms = torch.cat([head(f) for head, f in zip(self.LandmarkHead, features)], dim=1)
        return loc, F.softmax(conf, dim=-1), landms


@dataclass(frozen=True)
class Detections:
    """Faces of one image, highest score first: boxes [N,4] (x1,y1,x2,y2 pixels), scores [N], points [N,5,2]."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray


def preprocess(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 image -> [1,3,H,W] float tensor minus the official mean (channel order left as given)."""
    return preprocess_batch([image])


def preprocess_batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Same-sized HxWx3 uint8 images -> [B,3,H,W] float tensor minus the official mean."""
    shapes = {image.shape for image in images}
    if len(shapes) != 1 or any(len(shape) != 3 or shape[2] != 3 for shape in shapes):
        raise ValueError(f"expected HxWx3 images of one size, got shapes {sorted(shapes)}")
    stacked = torch.from_numpy(np.ascontiguousarray(np.stack(images))).float() - torch.tensor(RETINAFACE_MEAN)
    return stacked.permute(0, 3, 1, 2)


@torch.inference_mode()
def detect(model: RetinaFace, image: np.ndarray) -> Detections:
    """Run the official test-time pipeline on one image: network, decode, score filter, top-k, NMS, keep-top-k."""
    return detect_batch(model, [image])[0]


@torch.inference_mode()
def detect_batch(model: RetinaFace, images: Sequence[np.ndarray]) -> list[Detections]:
    """:func:`detect` for same-sized frames in one forward pass (what keeps a GPU busy); the decoding after the
    network is per image and identical to the single-image path, so batching changes no detection."""
    cfg = model.cfg
    height, width = images[0].shape[:2]
    device = next(model.parameters()).device
    loc, conf, landms = (output.float().cpu().numpy() for output in model(preprocess_batch(images).to(device)))
    priors = box_ops.prior_boxes((height, width), cfg.min_sizes, cfg.steps)
    scale = np.array([width, height], dtype=np.float32)
    found = []
    for i in range(len(images)):
        boxes = box_ops.decode_boxes(loc[i], priors, cfg.variances) * np.tile(scale, 2)
        points = box_ops.decode_landmarks(landms[i], priors, cfg.variances) * np.tile(scale, 5)
        scores = conf[i, :, 1]
        keep = np.flatnonzero(scores > cfg.confidence_threshold)
        keep = keep[np.argsort(-scores[keep], kind="stable")][: cfg.top_k]
        kept = box_ops.nms(boxes[keep], scores[keep], cfg.nms_threshold)[: cfg.keep_top_k]
        keep = keep[kept]
        found.append(Detections(boxes=boxes[keep], scores=scores[keep], points=points[keep].reshape(-1, 5, 2)))
    return found


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``mobilenet0.25_Final.pth`` was saved from DataParallel: strip ``module.``."""
    return {key.removeprefix("module."): value for key, value in state_dict.items()}
