"""FTCN+TT built from configs: shapes, logits, configs as data, the freeze split; box utilities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ftcn.models import FTCNConfig, box_ops, build_model, config_for_size, full_config, small_config, tiny_config


@pytest.mark.parametrize("cfg", [tiny_config(), small_config()], ids=lambda c: c.name)
def test_small_configs_forward_logits(cfg: FTCNConfig) -> None:
    torch.manual_seed(0)
    model = build_model(cfg)
    clips = torch.randn(3, 3, cfg.clip_len, cfg.image_size, cfg.image_size)
    with torch.inference_mode():
        logits = model(clips)
        features = model.features(clips)
    assert logits.shape == (3,)
    side = cfg.image_size // cfg.spatial_reduction
    assert features.shape == (3, cfg.feature_dim, cfg.num_time_tokens, side, side)
    # logits, not probabilities: shifting the final bias moves them outside [0, 1]
    with torch.no_grad():
        model.resnet.head.time_T.mlp_head[1].bias.fill_(5.0)
    with torch.inference_mode():
        assert (model(clips) > 1.0).all()


@pytest.mark.parametrize("frames", [8, 12, 16, 21])
def test_stem_in_steps_of_frames_equals_the_stem_in_one_piece(frames: int) -> None:
    """Outside training the stem runs a few frames at a time (memory); each step must see its temporal halo, and
    a last, shorter step must be handled, so the output equals the one-piece stem's."""
    from ftcn.models.ftcn_tt import Stem

    torch.manual_seed(0)
    stem = Stem(3, 16, temporal_kernel=5)
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so the halo and scaling both count
        stem.bn[0].running_mean.uniform_(-0.5, 0.5)
        stem.bn[0].running_var.uniform_(0.5, 2.0)
        stem.bn[0].weight.uniform_(0.5, 1.5)
    stem.eval()
    clips = torch.randn(2, 3, frames, 32, 32)
    with torch.inference_mode():
        whole = stem.pool_layer(stem.relu(stem.bn(stem.conv(clips))))
        stepped = stem(clips)
    assert stepped.shape == whole.shape
    torch.testing.assert_close(stepped, whole, rtol=1e-5, atol=1e-5)


def test_full_config_is_the_official_network() -> None:
    cfg = full_config()
    assert (cfg.feature_dim, cfg.num_time_tokens, cfg.image_size // cfg.spatial_reduction) == (1024, 16, 14)
    assert config_for_size("full") == cfg


def test_wrong_input_shape_is_a_clear_error() -> None:
    model = build_model(tiny_config())
    with pytest.raises(ValueError, match=r"expected clips \[B, 3, 8, 64, 64\]"):
        model(torch.zeros(1, 3, 16, 64, 64))


def test_config_round_trips_through_plain_data() -> None:
    for cfg in (full_config(), small_config(), tiny_config()):
        assert FTCNConfig.from_dict(cfg.to_dict()) == cfg


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ValueError, match="divisible"):
        dataclasses.replace(tiny_config(), image_size=70)
    with pytest.raises(ValueError, match="one entry per stage"):
        dataclasses.replace(tiny_config(), blocks_per_stage=(1, 1))
    with pytest.raises(ValueError, match="unknown model size"):
        config_for_size("huge")


def test_backbone_parameters_exclude_only_the_head() -> None:
    model = build_model(tiny_config())
    backbone = {id(p) for p in model.backbone_parameters()}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in backbone) == (not name.startswith("resnet.head.")), name


def test_training_mode_uses_dropout_and_batch_statistics() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config()).train()
    clips = torch.randn(2, 3, 8, 64, 64)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(clips), torch.tensor([0.0, 1.0]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_prior_box_count_and_order() -> None:
    priors = box_ops.prior_boxes((240, 320), ((16, 32), (64, 128), (256, 512)), (8, 16, 32))
    assert priors.shape == ((30 * 40 + 15 * 20 + 8 * 10) * 2, 4)
    # first two anchors: same centre, two sizes; then the next column
    np.testing.assert_allclose(priors[0], [4 / 320, 4 / 240, 16 / 320, 16 / 240], rtol=1e-6)
    np.testing.assert_allclose(priors[1, 2:], [32 / 320, 32 / 240], rtol=1e-6)
    np.testing.assert_allclose(priors[2, :2], [12 / 320, 4 / 240], rtol=1e-6)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], dtype=np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.1], dtype=np.float32)
    assert box_ops.nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert box_ops.nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]
    assert box_ops.nms(boxes[:0], scores[:0], 0.4).tolist() == []


def test_decode_inverts_a_known_regression() -> None:
    priors = np.array([[0.5, 0.5, 0.2, 0.4]], dtype=np.float32)
    boxes = box_ops.decode_boxes(np.zeros((1, 4), np.float32), priors, (0.1, 0.2))
    np.testing.assert_allclose(boxes, [[0.4, 0.3, 0.6, 0.7]], rtol=1e-6)
    points = box_ops.decode_landmarks(np.ones((1, 10), np.float32), priors, (0.1, 0.2))
    np.testing.assert_allclose(points[0, :2], [0.5 + 0.1 * 0.2, 0.5 + 0.1 * 0.4], rtol=1e-6)
