"""Checkpoint loading: official formats strict, our own format round-trips, bad files fail with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ftcn.checkpoints import (
    OFFICIAL_FTCN_THRESHOLD,
    CheckpointError,
    load_checkpoint,
    load_landmark_net,
    load_model,
    load_retinaface,
    save_checkpoint,
)
from ftcn.models import build_model, full_config, tiny_config
from ftcn.models.landmarks import MobileNetGDConv
from ftcn.models.retinaface import RetinaFace
from tests.parity_recipe import load_json, parity_dir, recipe_state_dict


def _official_keys(network: str) -> list[dict]:
    return load_json(parity_dir() / network / "keys.json")


@pytest.fixture(scope="module")
def official_ftcn_state() -> dict[str, torch.Tensor]:
    return recipe_state_dict(_official_keys("ftcn_tt"), weight_seed=3)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_ftcn_file_loads_strict(tmp_path: Path, official_ftcn_state, prefix: str) -> None:
    path = tmp_path / "ftcn_tt.pth"
    torch.save({prefix + k: v for k, v in official_ftcn_state.items()}, path)
    model, checkpoint = load_model(path)
    assert checkpoint.source_format == "official"
    assert checkpoint.config == full_config()
    assert checkpoint.threshold == OFFICIAL_FTCN_THRESHOLD  # the official script's operating point
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, official_ftcn_state[name]), name


def test_our_format_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config())
    path = save_checkpoint(tmp_path / "m.pt", model, threshold=0.37, metadata={"epochs": 2, "val_auc": 0.9})
    loaded, checkpoint = load_model(path)
    assert checkpoint.source_format == "ftcn-checkpoint"
    assert checkpoint.config == tiny_config()
    assert checkpoint.threshold == pytest.approx(0.37)
    assert checkpoint.metadata == {"epochs": 2, "val_auc": 0.9}
    clips = torch.randn(2, 3, 8, 64, 64)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with torch.inference_mode():  # loaded models run channels-last: same function up to float rounding
        torch.testing.assert_close(model(clips), loaded(clips), atol=1e-5, rtol=1e-5)
    assert not list(tmp_path.glob("*.partial"))


def test_truncated_file_is_named(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", build_model(tiny_config()))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch file"):
        load_checkpoint(bad)


def test_missing_empty_and_text_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "text.pt").write_text("hello, I am not a checkpoint\n")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickles_are_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "ftcn-checkpoint", "payload": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(path)
    assert "this must never run" not in capsys.readouterr().out


def test_mismatched_weights_name_the_keys(tmp_path: Path, official_ftcn_state) -> None:
    broken = dict(official_ftcn_state)
    del broken["resnet.head.time_T.cls_token"]
    broken["resnet.extra.weight"] = torch.zeros(1)
    broken["resnet.head.time_T.mlp_head.1.bias"] = torch.zeros(2)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    for fragment in ("cls_token", "resnet.extra.weight", "mlp_head.1.bias [2] != [1]", "missing", "unexpected"):
        assert fragment in message


def test_foreign_state_dict_is_not_mistaken_for_ftcn(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="neither an FTCN checkpoint nor the official"):
        load_checkpoint(path)


def test_invalid_threshold_and_config_are_rejected(tmp_path: Path) -> None:
    model = build_model(tiny_config())
    path = save_checkpoint(tmp_path / "m.pt", model)
    payload = torch.load(path, weights_only=True)
    payload["threshold"] = 1.5
    torch.save(payload, tmp_path / "threshold.pt")
    with pytest.raises(CheckpointError, match="threshold"):
        load_checkpoint(tmp_path / "threshold.pt")
    payload["threshold"] = 0.5
    payload["model_config"]["no_such_field"] = 1
    torch.save(payload, tmp_path / "config.pt")
    with pytest.raises(CheckpointError, match="no_such_field"):
        load_checkpoint(tmp_path / "config.pt")


def test_official_retinaface_file_loads(tmp_path: Path) -> None:
    state = recipe_state_dict(_official_keys("retinaface_mnet025"), weight_seed=5)
    path = tmp_path / "mobilenet0.25_Final.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)
    model = load_retinaface(path)
    assert isinstance(model, RetinaFace) and not model.training
    assert torch.equal(model.state_dict()["body.stage1.0.0.weight"], state["body.stage1.0.0.weight"])


def test_official_landmark_file_loads_from_state_dict_key(tmp_path: Path) -> None:
    state = recipe_state_dict(_official_keys("landmark_mobilenet_gdconv"), weight_seed=5)
    path = tmp_path / "mobilenet_224_model_best_gdconv_external.pth.tar"
    torch.save({"epoch": 10, "state_dict": state}, path)
    model = load_landmark_net(path)
    assert isinstance(model, MobileNetGDConv)
    # The shared MobileNetV2 modules take the last value loaded for them (base_net), as in the official code.
    assert torch.equal(model.state_dict()["linear1.conv.weight"], state["linear1.conv.weight"])
    with pytest.raises(CheckpointError, match="does not match"):
        load_retinaface(path)


def test_admin_refuses_to_register_a_pickle_payload(tmp_path: Path, capsys, monkeypatch) -> None:
    from jobs.admin import main as admin_main

    monkeypatch.setenv("FTCN_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("FTCN_STORAGE_URL", (tmp_path / "storage").as_uri())
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ftcn-checkpoint", "payload": _Payload()}, evil)
    assert admin_main(["register-model", str(evil), "--name", "evil"]) == 2
    captured = capsys.readouterr()
    assert "refusing to unpickle" in captured.err and "this must never run" not in captured.out
    assert not (tmp_path / "storage").exists() or not list((tmp_path / "storage").rglob("*.pt"))
