"""One command per step on miniature standard datasets of real (synthetic) videos: ``ftcn preprocess --dataset``
keeps the official split, ``ftcn train --recipe paper`` runs a short epoch of the paper's recipe, ``ftcn evaluate
--dataset`` and ``ftcn protocol`` print the paper's cross-dataset table beside its figures."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from ftcn.checkpoints import load_checkpoint, save_checkpoint
from ftcn.cli import main as ftcn
from ftcn.models import build_model, tiny_config
from ftcn.predict.protocol import BENCHMARKS
from ftcn.training.recipes import PAPER, recipe_from_yaml
from tests.standard_trees import celebdf_tree, dfdc_tree, dfo_tree, ffpp_tree

SMALL_PAIRS = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """One real and one fake synthetic video of 36 frames (enough for the recipe's 32-frame clips)."""
    root = tmp_path_factory.mktemp("media")
    assert ftcn(["synth", str(root), "--videos", "2", "--seed", "5", "--frames", "36"]) == 0
    return {label: next((root / label).glob("*.mp4")) for label in ("real", "fake")}


@pytest.fixture(scope="module")
def trees(tmp_path_factory, media) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    roots = {"ffpp": root / "FaceForensics++", "celebdf": root / "Celeb-DF-v2", "dfdc": root / "DFDC",
             "dfo": root / "DeeperForensics-1.0"}
    ffpp_tree(roots["ffpp"], media.__getitem__, SMALL_PAIRS, methods=("Deepfakes", "FaceShifter"))
    celebdf_tree(roots["celebdf"], media.__getitem__)
    dfdc_tree(roots["dfdc"], media.__getitem__)
    dfo_tree(roots["dfo"], media.__getitem__, splits={"train": ["000_M101.mp4"], "val": ["002_W102.mp4"],
                                                      "test": ["004_W104.mp4", "005_M105.mp4"]})
    return roots


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)  # plumbing: this untrained model's scores are not under test, the table's making is
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "tiny.pt", build_model(tiny_config()),
                           metadata={"purpose": "protocol plumbing test, untrained"})


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_protocol_prints_the_cross_dataset_table_beside_the_paper(trees, tiny_weights, tmp_path: Path,
                                                                  capsys) -> None:
    out = tmp_path / "protocol"
    argv = ["protocol", str(tiny_weights), "--ffpp", str(trees["ffpp"]), "--celebdf", str(trees["celebdf"]),
            "--dfdc", str(trees["dfdc"]), "--dfo", str(trees["dfo"]), "--out", str(out)]
    assert ftcn(argv) == 0
    printed = capsys.readouterr().out
    lines = json.loads((out / "protocol.json").read_text())["benchmarks"]
    assert [line["benchmark"] for line in lines] == [b.name for b in BENCHMARKS]
    expected_counts = {"Celeb-DF": (2, 2), "DFDC": (2, 2), "FaceShifter": (2, 2), "DeeperForensics": (2, 2)}
    for line, benchmark in zip(lines, BENCHMARKS):
        measured = line["measured"]
        assert (measured["real"], measured["fake"]) == expected_counts[benchmark.name]
        assert measured["scored"] == measured["videos"] and line["failed"] == 0
        assert 0 <= measured["auc"] <= 1 and 0 <= measured["ap"] <= 1 and measured["eer"] is not None
        row = re.search(rf"^\| {benchmark.name} \| (\d+) \(2 / 2\) \| \d+ \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| "
                        rf"{benchmark.paper_auc:.1f} \|$", printed, re.M)
        assert row, f"no table row for {benchmark.name} in:\n{printed}"
        assert float(row.group(2)) == pytest.approx(100 * measured["auc"], abs=0.05)
    assert (out / "protocol.md").read_text().strip() in printed
    # FaceForensics++'s test originals serve FaceShifter and DeeperForensics: scored once
    assert len(read_csv(out / "videos" / "summary.csv")) == 2 + 2 + 4 + 4 + 2

    assert ftcn(argv) == 0  # a rerun resumes: nothing scored again
    assert "0 scored now, 14 already done" in capsys.readouterr().out

    assert ftcn(["protocol", str(tiny_weights), "--celebdf", str(trees["celebdf"]), "--out", str(out)]) == 0
    assert re.search(r"^\| DFDC \| not given \|.* 74\.0 \|$", capsys.readouterr().out, re.M)


def test_protocol_needs_a_dataset_and_reports_a_broken_one(trees, tiny_weights, tmp_path: Path, capsys) -> None:
    assert ftcn(["protocol", str(tiny_weights), "--out", str(tmp_path)]) == 2
    assert "give at least one dataset" in capsys.readouterr().err
    assert ftcn(["protocol", str(tiny_weights), "--dfo", str(trees["dfo"]), "--out", str(tmp_path)]) == 2
    assert "--ffpp-root" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_a_standard_test_split(trees, tiny_weights, tmp_path: Path, capsys) -> None:
    assert ftcn(["evaluate", str(tiny_weights), str(trees["celebdf"]), "--dataset", "celebdf",
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["overall"]["real"], report["overall"]["fake"]) == (2, 2)
    assert set(report["methods"]) == {"Celeb-synthesis"}
    listed = (trees["celebdf"] / "List_of_testing_videos.txt").read_text().split()[1::2]
    assert sorted(r["video"] for r in read_csv(tmp_path / "summary.csv")) == sorted(listed)


@pytest.mark.slow
def test_paper_recipe_preprocesses_with_the_official_split_and_trains_a_short_epoch(trees, tmp_path: Path,
                                                                                    capsys) -> None:
    clips = tmp_path / "clips"
    assert ftcn(["preprocess", "--dataset", "ffpp", str(trees["ffpp"]), str(clips), "--recipe", "paper",
                 "--methods", "Deepfakes", "--max-clips", "1"]) == 0
    printed = capsys.readouterr().out
    assert "clip_len = 32  (ftcn_tt.yaml clip_size: 32)" in printed
    assert "official split kept in split.csv: train 4, val 4, test 4 videos" in printed
    rows = read_csv(clips / "split.csv")
    for row in rows:  # every video in its official split
        ids = re.findall(r"(\d{3})", row["video_id"].split("/")[-1])
        pair_split = next(s for s, pairs in SMALL_PAIRS.items() if ids[0] in pairs[0])
        assert row["split"] == pair_split
        assert row["method"] == ("Deepfakes" if row["label"] == "fake" else "")
    described = json.loads((clips / "dataset.json").read_text())
    assert (described["kind"], described["compression"], described["methods"]) == ("ffpp", "c23", ["Deepfakes"])

    assert ftcn(["train", str(clips), "--out", str(tmp_path / "run"), "--dataset", "celebdf"]) == 2
    assert "was preprocessed from ffpp" in capsys.readouterr().err
    run = tmp_path / "run"
    assert ftcn(["train", str(clips), "--out", str(run), "--dataset", "ffpp", "--recipe", "paper", "--epochs", "1",
                 "--max-steps", "1", "--batch-size", "2"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["recipe"] == "paper" and summary["epochs_run"] == 1 and summary["model"] == "ftcn_tt"
    assert (summary["optimizer"], summary["lr"], summary["lr_step"]) == (
        PAPER.train["optimizer"], PAPER.train["lr"], PAPER.train["lr_step"])
    assert summary["batch_size"] == 2  # the command line wins over the recipe
    checkpoint = load_checkpoint(run / "best.pt")
    assert (checkpoint.config.clip_len, checkpoint.config.image_size) == (32, 224)
    assert "FaceForensics++ c23 (Deepfakes), official split" in json.dumps(checkpoint.metadata)


def test_official_setting_file_is_read_as_a_recipe(tmp_path: Path, capsys) -> None:
    setting = {"clip_size": 16, "imsize": 112, "trainer": {"default": {"batch_size": 4, "init_lr": "1e-4",
                                                                       "total_step": 50, "lr_step": 20,
                                                                       "log_step": 200}},
               "dataset": {"real_train": {"original_c40": 1}, "fake_train": {"FaceSwap_c40": 1, "Deepfakes_c40": 1}},
               "aug": {"earse": 0, "need_mask_distortion": True}}
    path = tmp_path / "ftcn_tt.yaml"
    path.write_text(yaml.safe_dump(setting))
    recipe = recipe_from_yaml(path)
    assert (recipe.preprocess["clip_len"], recipe.preprocess["size"]) == (16, 112)
    assert (recipe.train["batch_size"], recipe.train["lr"], recipe.train["max_steps"], recipe.train["lr_step"]) == (
        4, 1e-4, 50, 20)
    assert recipe.train["optimizer"] == PAPER.train["optimizer"] and recipe.train["erase_prob"] == 0.0
    assert (recipe.dataset["compression"], sorted(recipe.dataset["methods"])) == ("c40", ["Deepfakes", "FaceSwap"])
    assert recipe.unused == ("aug.need_mask_distortion",)
    assert "ftcn_tt.yaml trainer.default.init_lr" in recipe.sources["lr"]

    path.write_text("clip_size: [oops\n")
    assert ftcn(["train", str(tmp_path), "--out", str(tmp_path / "run"), "-c", str(path)]) == 2
    assert "ftcn_tt.yaml is not a YAML file" in capsys.readouterr().err
    path.write_text(yaml.safe_dump({"clip_size": "many"}))
    assert ftcn(["preprocess", str(tmp_path), str(tmp_path / "out"), "-c", str(path)]) == 2
    assert "clip_size is 'many', not a number" in capsys.readouterr().err
