"""Typed configuration of the FTCN+TT network; "full" and "tiny" differ only in these values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FTCNConfig:
    """Sizes of an FTCN+TT network. The defaults are the official ``ftcn_tt`` configuration.

    Temporal kernels follow SlowFast's i3d basis: the stem uses 5, and inside a stage the blocks cycle through the
    stage's pattern (s2: 3,3,3; s3: 3,1,3,1; s4: 3,1,3,1,3,1). The fifth ResNet stage is removed in FTCN.
    """

    name: str = "ftcn_tt"
    in_channels: int = 3
    clip_len: int = 32
    image_size: int = 224
    stem_width: int = 64
    stem_temporal_kernel: int = 5
    width_per_group: int = 64
    blocks_per_stage: tuple[int, ...] = (3, 4, 6)
    temporal_kernels: tuple[tuple[int, ...], ...] = ((3,), (3, 1), (3, 1))
    spatial_strides: tuple[int, ...] = (1, 2, 2)
    temporal_pool: int = 2
    head_depth: int = 1
    head_heads: int = 16
    head_dim_head: int = 64
    head_mlp_dim: int = 2048
    head_dropout: float = 0.1
    head_emb_dropout: float = 0.1
    # The official ImageNet statistics in 0-255 space (RGB); clips are normalised with them before the network.
    mean: tuple[float, float, float] = field(default=(0.485 * 255, 0.456 * 255, 0.406 * 255))
    std: tuple[float, float, float] = field(default=(0.229 * 255, 0.224 * 255, 0.225 * 255))

    def __post_init__(self) -> None:
        stages = len(self.blocks_per_stage)
        if not (len(self.temporal_kernels) == len(self.spatial_strides) == stages) or stages < 1:
            raise ValueError("blocks_per_stage, temporal_kernels and spatial_strides need one entry per stage")
        if self.clip_len % self.temporal_pool:
            raise ValueError(f"clip_len {self.clip_len} is not divisible by temporal_pool {self.temporal_pool}")
        reduction = self.spatial_reduction
        if self.image_size % reduction:
            raise ValueError(f"image_size {self.image_size} is not divisible by the network's stride {reduction}")

    @property
    def feature_dim(self) -> int:
        """Channels of the last stage (bottleneck expansion 4)."""
        return self.width_per_group * 2 ** (len(self.blocks_per_stage) - 1) * 4

    @property
    def num_time_tokens(self) -> int:
        return self.clip_len // self.temporal_pool

    @property
    def spatial_reduction(self) -> int:
        """Stem (2x2 pool then 3x3/2 pool) is 4; each stride-2 stage doubles it."""
        reduction = 4
        for stride in self.spatial_strides:
            reduction *= stride
        return reduction

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, stored inside our checkpoints (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FTCNConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config fields: {', '.join(unknown)}")
        converted = dict(values)
        for key in ("blocks_per_stage", "spatial_strides", "mean", "std"):
            if key in converted:
                converted[key] = tuple(converted[key])
        if "temporal_kernels" in converted:
            converted["temporal_kernels"] = tuple(tuple(k) for k in converted["temporal_kernels"])
        return cls(**converted)


def full_config() -> FTCNConfig:
    """The official ftcn_tt network (what ``ftcn_tt.pth`` holds)."""
    return FTCNConfig()


def small_config() -> FTCNConfig:
    """Same architecture at about 1/100 of the compute: CPU training, the demo and quick tests."""
    return FTCNConfig(
        name="ftcn_tt_small",
        clip_len=16,
        image_size=112,
        stem_width=16,
        width_per_group=16,
        blocks_per_stage=(2, 2, 2),
        head_heads=4,
        head_dim_head=32,
        head_mlp_dim=256,
    )


def tiny_config() -> FTCNConfig:
    """The smallest sensible network, for unit and pipeline tests (milliseconds per clip on a CPU)."""
    return FTCNConfig(
        name="ftcn_tt_tiny",
        clip_len=8,
        image_size=64,
        stem_width=8,
        width_per_group=8,
        blocks_per_stage=(1, 1, 1),
        temporal_kernels=((3,), (3,), (3,)),
        head_heads=2,
        head_dim_head=16,
        head_mlp_dim=64,
    )


MODEL_SIZES = {"full": full_config, "small": small_config, "tiny": tiny_config}


def config_for_size(size: str) -> FTCNConfig:
    try:
        return MODEL_SIZES[size]()
    except KeyError:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(MODEL_SIZES)}") from None
