"""A faster arithmetic is judged by verdicts and AUC against fp32 (``ftcn.precision_check``), recorded in the
checkpoint with its int8 graph, and chosen by predictions only when the model's own check passed it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ftcn.checkpoints import load_checkpoint, model_from_checkpoint
from ftcn.datasets.split import load_split_rows
from ftcn.datasets.storage import LocalStore
from ftcn.precision_check import (
    AUC_MARGIN, ENGINES, MIN_AGREEMENT, MIN_VIDEOS, check_checkpoint, engine_for_model, judge, save_checked,
    score_videos,
)
from ftcn.quantize import int8_available
from ftcn.runtime import Engine, engine_for
from ftcn.training.data import ClipDataset, clip_refs
from tests.datasets import write_clip_dataset
from tests.models import untrained

needs_int8 = pytest.mark.skipif(not int8_available(), reason="int8 needs nncf and openvino")


def test_the_rule_takes_verdicts_and_auc_not_probabilities() -> None:
    fp32 = np.linspace(0.05, 0.95, 200)
    labels = (fp32 >= 0.4).astype(float)  # a good model: fakes score high
    moved = np.clip(fp32 + 0.03, 0, 1)  # every score moved, by far more than any probability guard
    assert judge("bf16", fp32, fp32, labels, 0.5).passed
    shifted = judge("bf16", fp32, moved, labels, 0.5)
    changed = np.mean((fp32 >= 0.5) != (moved >= 0.5))
    assert shifted.passed == (changed <= 1 - MIN_AGREEMENT)
    few = judge("bf16", fp32[:MIN_VIDEOS - 1], fp32[:MIN_VIDEOS - 1], labels[:MIN_VIDEOS - 1], 0.5)
    assert not few.passed and f"at least {MIN_VIDEOS}" in few.why  # too few videos to show the agreement
    flipped = judge("int8", fp32, 1 - fp32, labels, 0.5)
    assert not flipped.passed and "verdicts" in flipped.why and "AUC" in flipped.why
    assert flipped.auc < flipped.auc_fp32 - AUC_MARGIN


@pytest.fixture(scope="module")
def checked_setup(tmp_path_factory):
    """A tiny model and a small preprocessed set with train and validation videos."""
    folder = tmp_path_factory.mktemp("precision")
    videos = {f"{label}{i}": (label, split) for label in ("real", "fake") for i, split in
              enumerate(["train"] * 4 + ["val"] * 6)}
    data = write_clip_dataset(folder / "data", videos, (8, 64, 3), clips_per_video=2)
    model, checkpoint = untrained("tiny", seed=0)
    store = LocalStore(data)
    val = ClipDataset(store, clip_refs(load_split_rows(store), "val"), model.cfg)
    _, _, scores, _ = score_videos(engine_for(model, "auto", "fp32"), val)
    # a threshold inside the untrained model's scores, so that its verdicts are not all one way
    return folder, store, replace(checkpoint, threshold=float(np.median(scores)))


@needs_int8
def test_an_int8_graph_forced_to_disagree_is_refused_and_never_chosen(checked_setup) -> None:
    folder, store, checkpoint = checked_setup

    def disagreeing(model, calibration) -> Engine:  # the real int8 graph, its logits turned round
        honest = ENGINES["int8"](model, calibration)
        return Engine("openvino", "int8", lambda clips, threads=None: -honest(clips, threads))

    checked, table = check_checkpoint(checkpoint, store, engines={"int8": disagreeing})
    int8 = next(row for row in table if row.precision == "int8")
    assert not int8.passed and "verdicts" in int8.why
    assert "int8" not in checked.metadata["precision"]["passed"] and checked.int8_graph is None
    model = model_from_checkpoint(checked)
    assert engine_for_model(model, checked, "auto", "auto").precision == "fp32"


@needs_int8
def test_a_passing_int8_travels_with_the_checkpoint_and_runs_by_default(checked_setup, tmp_path, monkeypatch
                                                                          ) -> None:
    folder, store, checkpoint = checked_setup
    honest_but_exact = {"int8": lambda model, calibration: (ENGINES["int8"](model, calibration),
                                                            engine_for(model, "auto", "fp32"))[1]}
    # judged with fp32's own scores, int8 passes by construction; its graph is the real one, made on calibration
    checked, table = check_checkpoint(checkpoint, store, engines=honest_but_exact, min_videos=1)
    assert "int8" in checked.metadata["precision"]["passed"] and checked.int8_graph is not None
    path = save_checked(tmp_path / "checked.pt", checked)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another-machine"))  # no graph cached there
    loaded = load_checkpoint(path)
    assert loaded.int8_graph == checked.int8_graph
    model = model_from_checkpoint(loaded)
    engine = engine_for_model(model, loaded, "auto", "auto")
    assert engine.precision == "int8"
    clips = torch.randn(2, 3, model.cfg.clip_len, model.cfg.image_size, model.cfg.image_size)
    assert engine(clips).shape == (2,)


@needs_int8
def test_the_command_prints_the_table_and_writes_the_checked_checkpoint(checked_setup, tmp_path, capsys) -> None:
    from ftcn.cli import main

    folder, store, checkpoint = checked_setup
    model = save_checked(tmp_path / "model.pt", checkpoint)
    assert main(["check-precision", str(model), str(folder / "data"), "--split", "train",
                 "--calibrate-split", "train"]) == 2  # judged on the clips it was calibrated on: refused
    assert "must differ" in capsys.readouterr().err
    assert main(["check-precision", str(model), str(folder / "data"), "--out", str(tmp_path / "checked.pt")]) == 0
    printed = capsys.readouterr().out
    checked = load_checkpoint(tmp_path / "checked.pt")
    assert all(f"\n{name} " in printed for name in ("fp32", "bf16", "int8"))
    assert f"passes: {', '.join(checked.metadata['precision']['passed'])}" in printed
