"""MobileNet_GDConv: the 68-point landmark network used by the official FTCN video script.

It wraps torchvision's MobileNetV2 (``pretrain_net``) and reuses its ``features`` as ``base_net``, so the same
modules appear under both names in the state dict. torchvision's compiled extension does not load beside the CPU
torch build we use, so MobileNetV2 is written here with torchvision's module names. A global depthwise 7x7 conv
("GDConv") and a 1x1 conv then give 136 values: 68 (x, y) pairs in [0, 1] relative to the square face crop.
"""

from __future__ import annotations

import torch
from torch import nn

# torchvision's MobileNetV2 inverted-residual settings: expansion t, channels c, repeats n, first stride s.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                         (6, 160, 3, 2), (6, 320, 1, 1))
NUM_LANDMARK_VALUES = 136


def _conv_bn_relu6(inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation with ReLU6."""
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(inp, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2 (width 1.0) with the same module names."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, stride=2)]
        channels = 32
        for expand, out_channels, repeats, stride in MOBILENET_V2_SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out_channels, stride if i == 0 else 1, expand))
                channels = out_channels
        layers.append(_conv_bn_relu6(channels, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


class LinearConvBlock(nn.Module):
    """Conv + BN without activation (the official ConvBlock with ``linear=True``)."""

    def __init__(self, inp: int, oup: int, kernel: int, depthwise: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, kernel, 1, 0, groups=inp if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(oup)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MobileNetGDConv(nn.Module):
    """[B, 3, 224, 224] ImageNet-normalised RGB face crops -> [B, 136] landmark coordinates in crop units."""

    input_size = 224

    def __init__(self, num_classes: int = NUM_LANDMARK_VALUES) -> None:
        super().__init__()
        self.pretrain_net = MobileNetV2()
        self.base_net = nn.Sequential(*list(self.pretrain_net.children())[:-1])  # shares pretrain_net.features
        self.linear7 = LinearConvBlock(1280, 1280, 7, depthwise=True)
        self.linear1 = LinearConvBlock(1280, num_classes, 1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if crops.ndim != 4 or tuple(crops.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"expected crops [B, 3, 224, 224], got {list(crops.shape)}")
        return self.linear1(self.linear7(self.base_net(crops))).flatten(1)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official ``.pth.tar`` may come from DataParallel: strip ``module.``."""
    return {key.removeprefix("module."): value for key, value in state_dict.items()}
