"""FTCN+TT: a temporal-only 3D ResNet followed by a temporal transformer.

Zheng et al., "Exploring Temporal Coherence for More General Video Face Forgery Detection" (ICCV 2021). The
paper's point is that a detector which can only look along time (every spatial kernel reduced to 1x1) is pushed
to learn temporal incoherence, which generalises across forgery methods better than spatial artefacts.

Module names and registration order follow the official code (a SlowFast-style I3D ResNet with one pathway,
wrapped as ``resnet``, and a ViT-style ``TransformerHead`` under ``resnet.head.time_T``) so that the published
``ftcn_tt.pth`` loads with ``strict=True``. Where the original network had a spatial stride of 2, the official code
keeps stride 1 and appends a ``MaxPool3d((1, 2, 2))`` to the following BatchNorm; we reproduce that, which is why
some BatchNorms are ``nn.Sequential`` (``bn.0.weight`` in the state dict).

Tensor layout: clips are ``[B, C, T, H, W]`` everywhere in this module.
"""

from __future__ import annotations

import torch
from torch import nn

from ftcn.models.config import FTCNConfig


def _norm_then_pool(channels: int, spatial_stride: int) -> nn.Module:
    """BatchNorm, followed by the 2x2 max-pool that replaces a spatial stride (official FTCN trick)."""
    if spatial_stride == 1:
        return nn.BatchNorm3d(channels)
    if spatial_stride != 2:
        raise ValueError(f"spatial stride must be 1 or 2, got {spatial_stride}")
    return nn.Sequential(nn.BatchNorm3d(channels), nn.MaxPool3d((1, 2, 2)))


STEM_FRAMES_PER_STEP = 8


class Stem(nn.Module):
    """Temporal conv (k x 1 x 1), BN + 2x2 pool, ReLU, then the stem's own 3x3/2 spatial max-pool.

    Outside training the stem runs ``STEM_FRAMES_PER_STEP`` frames at a time (each step reads its conv's
    temporal halo from the zero-padded input), so the conv's full-resolution output, 64 channels at 224x224
    (411 MB for a 32-frame clip), never exists whole. Measured on the full model through ONNX Runtime (2 cores):
    peak memory 1.06 GB instead of 1.25 GB, the same time per clip, logits equal to 5e-7. In training BatchNorm
    needs the whole batch's statistics, so the stem runs in one piece there."""

    def __init__(self, dim_in: int, dim_out: int, temporal_kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            dim_in, dim_out, (temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0), bias=False
        )
        self.bn = _norm_then_pool(dim_out, 2)
        self.relu = nn.ReLU(inplace=True)
        self.pool_layer = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        if self.training or frames <= STEM_FRAMES_PER_STEP:
            return self.pool_layer(self.relu(self.bn(self.conv(x))))
        halo = self.conv.padding[0]
        padded = nn.functional.pad(x, (0, 0, 0, 0, halo, halo))
        steps = []
        for start in range(0, frames, STEM_FRAMES_PER_STEP):
            window = padded[:, :, start:start + min(STEM_FRAMES_PER_STEP, frames - start) + 2 * halo]
            convolved = nn.functional.conv3d(window, self.conv.weight)  # the halo replaces the conv's padding
            steps.append(self.pool_layer(self.relu(self.bn(convolved))))
        return torch.cat(steps, dim=2)


class Bottleneck(nn.Module):
    """Bottleneck transform a (temporal k x 1 x 1) -> b (1x1x1, carries the stride) -> c (1x1x1 expand)."""

    def __init__(self, dim_in: int, dim_out: int, dim_inner: int, temporal_kernel: int, spatial_stride: int):
        super().__init__()
        self.a = nn.Conv3d(
            dim_in, dim_inner, (temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0), bias=False
        )
        self.a_bn = nn.BatchNorm3d(dim_inner)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = nn.Conv3d(dim_inner, dim_inner, 1, bias=False)
        self.b_bn = _norm_then_pool(dim_inner, spatial_stride)
        self.b_relu = nn.ReLU(inplace=True)
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a_relu(self.a_bn(self.a(x)))
        x = self.b_relu(self.b_bn(self.b(x)))
        return self.c_bn(self.c(x))


class ResBlock(nn.Module):
    """Residual block; a projection shortcut (branch1) when the shape changes."""

    def __init__(self, dim_in: int, dim_out: int, dim_inner: int, temporal_kernel: int, spatial_stride: int):
        super().__init__()
        if dim_in != dim_out or spatial_stride != 1:
            self.branch1 = nn.Conv3d(dim_in, dim_out, 1, bias=False)
            self.branch1_bn = _norm_then_pool(dim_out, spatial_stride)
        self.branch2 = Bottleneck(dim_in, dim_out, dim_inner, temporal_kernel, spatial_stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.branch1_bn(self.branch1(x)) if hasattr(self, "branch1") else x
        return self.relu(shortcut + self.branch2(x))


class ResStage(nn.Module):
    """A stage of residual blocks; temporal kernels cycle through the stage's pattern (SlowFast's rule)."""

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        dim_inner: int,
        num_blocks: int,
        temporal_kernels: tuple[int, ...],
        spatial_stride: int,
    ) -> None:
        super().__init__()
        for i in range(num_blocks):
            block = ResBlock(
                dim_in if i == 0 else dim_out,
                dim_out,
                dim_inner,
                temporal_kernels[i % len(temporal_kernels)],
                spatial_stride if i == 0 else 1,
            )
            self.add_module(f"pathway0_res{i}", block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class StemStage(nn.Module):
    """Holds the stem under the name the official checkpoint uses (``s1.pathway0_stem``)."""

    def __init__(self, dim_in: int, dim_out: int, temporal_kernel: int) -> None:
        super().__init__()
        self.pathway0_stem = Stem(dim_in, dim_out, temporal_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pathway0_stem(x)


# ---------------------------------------------------------------- temporal transformer head (vit-pytorch layout)


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class Attention(nn.Module):
    """Multi-head self-attention with a fused, bias-free qkv projection (as in the official head)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.to_qkv(x).view(batch, tokens, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        # Same 1/sqrt(dim_head) scale as the official einsum version, which (like the 2021 vit-pytorch it copies)
        # has no dropout on the attention weights; dropout sits after the output projection only.
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, tokens, self.heads * self.dim_head)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    Residual(PreNorm(dim, Attention(dim, heads, dim_head, dropout))),
                    Residual(PreNorm(dim, FeedForward(dim, mlp_dim, dropout))),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, feed_forward in self.layers:
            x = feed_forward(attention(x))
        return x


class TimeTransformer(nn.Module):
    """ViT over time tokens: a class token, learned position embedding, transformer, LayerNorm + Linear."""

    def __init__(self, num_tokens: int, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int,
                 dropout: float, emb_dropout: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(1, num_tokens + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = Transformer(dim, depth, heads, dim_head, mlp_dim, dropout)
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, num_tokens, _ = tokens.shape
        x = torch.cat([self.cls_token.expand(batch, -1, -1), tokens], dim=1)
        x = self.dropout(x + self.pos_embedding[:, : num_tokens + 1])
        x = self.transformer(x)
        return self.mlp_head(x[:, 0])


class TransformerHead(nn.Module):
    """Average over space per time step -> one token per time step -> TimeTransformer -> one logit."""

    def __init__(self, cfg: FTCNConfig) -> None:
        super().__init__()
        self.time_T = TimeTransformer(
            num_tokens=cfg.num_time_tokens,
            dim=cfg.feature_dim,
            depth=cfg.head_depth,
            heads=cfg.head_heads,
            dim_head=cfg.head_dim_head,
            mlp_dim=cfg.head_mlp_dim,
            dropout=cfg.head_dropout,
            emb_dropout=cfg.head_emb_dropout,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = features.mean(dim=(3, 4)).transpose(1, 2)  # [B, C, T, H, W] -> [B, T, C]
        return self.time_T(tokens)


# ---------------------------------------------------------------- the network


class ResNetTemporal(nn.Module):
    """The backbone plus head, registered under the official names (s1, s2, pathway0_pool, s3, s4, head)."""

    def __init__(self, cfg: FTCNConfig) -> None:
        super().__init__()
        self.s1 = StemStage(cfg.in_channels, cfg.stem_width, cfg.stem_temporal_kernel)
        widths = [cfg.width_per_group * 2**i for i in range(len(cfg.blocks_per_stage))]
        dim_in = cfg.stem_width
        for index, (blocks, kernels, stride, inner) in enumerate(
            zip(cfg.blocks_per_stage, cfg.temporal_kernels, cfg.spatial_strides, widths)
        ):
            stage = ResStage(dim_in, inner * 4, inner, blocks, kernels, stride)
            self.add_module(f"s{index + 2}", stage)
            if index == 0:
                # Official i3d: a temporal max-pool after s2 halves the clip length (32 frames -> 16 tokens).
                pool = cfg.temporal_pool
                self.pathway0_pool = nn.MaxPool3d((pool, 1, 1), stride=(pool, 1, 1))
            dim_in = inner * 4
        self.head = TransformerHead(cfg)
        self.num_stages = len(cfg.blocks_per_stage)

    #: Leading steps of :meth:`steps` (stem, first stage, temporal pool, ...) that compute in fp32 even under bf16
    #: autocast. They see the fine frame-to-frame differences of pixels FTCN looks for; rounded to bf16 there, a
    #: trained model's clip probabilities moved by up to 0.014, 0.0016-0.0065 with these four in fp32
    #: (ftcn.precision: bf16 is therefore never the default).
    fp32_steps: int = 4

    def steps(self) -> list[nn.Module]:
        """The backbone in order: stem, first stage, the temporal pool, the remaining stages."""
        later = [getattr(self, f"s{index + 2}") for index in range(1, self.num_stages)]
        return [self.s1, self.s2, self.pathway0_pool, *later]

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """The feature map entering the head, [B, feature_dim, T / temporal_pool, H / 16, W / 16]."""
        x = clips
        steps = self.steps()
        with torch.autocast(clips.device.type, enabled=False):
            for step in steps[: self.fp32_steps]:
                x = step(x.float())
        for step in steps[self.fp32_steps :]:
            x = step(x)
        return x

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(clips))


class FTCN(nn.Module):
    """FTCN+TT classifier. ``forward`` takes normalised clips ``[B, 3, T, H, W]`` and returns logits ``[B]``.

    The official forward applies a sigmoid; we return logits so that training can use
    ``BCEWithLogitsLoss`` (numerically stable) and callers apply ``torch.sigmoid`` for probabilities.
    """

    def __init__(self, cfg: FTCNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.resnet = ResNetTemporal(cfg)
        _init_weights(self)

    def check_input(self, clips: torch.Tensor) -> None:
        expected = (self.cfg.in_channels, self.cfg.clip_len, self.cfg.image_size, self.cfg.image_size)
        if clips.ndim != 5 or tuple(clips.shape[1:]) != expected:
            raise ValueError(f"expected clips [B, {', '.join(map(str, expected))}], got {list(clips.shape)}")

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        self.check_input(clips)
        return self.resnet.features(clips)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.check_input(clips)
        return self.resnet(clips).squeeze(1)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Everything but the temporal transformer head (what ``--freeze`` keeps fixed)."""
        return [p for name, p in self.named_parameters() if not name.startswith("resnet.head.")]

    def freeze_backbone(self) -> None:
        """Train only the head: backbone parameters get no gradient, and its BatchNorms keep their statistics."""
        for parameter in self.backbone_parameters():
            parameter.requires_grad_(False)
        self._frozen = True
        self.train(self.training)

    def train(self, mode: bool = True) -> "FTCN":
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode (BN running stats untouched)."""
        super().train(mode)
        if mode and getattr(self, "_frozen", False):
            for name, module in self.resnet.named_children():
                if name != "head":
                    module.eval()
        return self


def _init_weights(model: nn.Module) -> None:
    """Kaiming for convs, unit BN, small normal for the head tokens (SlowFast / ViT defaults)."""
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, TimeTransformer):
            nn.init.trunc_normal_(module.pos_embedding, std=0.02)
            nn.init.trunc_normal_(module.cls_token, std=0.02)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Adapt the official ``ftcn_tt.pth`` (a bare state dict, maybe saved from DataParallel) to this module."""
    return {key.removeprefix("module."): value for key, value in state_dict.items()}
