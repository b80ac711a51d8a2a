"""Named training recipes (``ftcn train --recipe paper``) and the official ``ftcn_tt.yaml`` read as one.

The official repository released the model and its test script, not its training code; what it did release is
``setting/ftcn_tt.yaml`` (over ``root_setting.yaml``), the setting the released weights were trained with. The
``paper`` recipe holds its values, and every hyper-parameter says where it comes from: ``ftcn_tt.yaml``,
``root_setting.yaml`` (a default the setting does not override), or ``chosen here`` where the released files are
silent or name code that was never published. ``-c/--config ftcn_tt.yaml`` reads those files' keys into the same
form, so a researcher can pass the reference script's setting unchanged; keys we have no code for are reported,
never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftcn.errors import BadOption

OFFICIAL = "ftcn_tt.yaml"
ROOT = "root_setting.yaml (not overridden by ftcn_tt.yaml)"
CHOSEN = "chosen here"


@dataclass(frozen=True)
class Recipe:
    """What a recipe sets: preprocessing (clips), training, and the dataset selection it was made for."""

    name: str
    preprocess: dict[str, Any] = field(default_factory=dict)  # PreprocessConfig fields
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    dataset: dict[str, Any] = field(default_factory=dict)  # DatasetOptions fields (compression, methods)
    sources: dict[str, str] = field(default_factory=dict)  # hyper-parameter -> where its value comes from
    unused: tuple[str, ...] = ()  # keys of a given file that no code here implements

    def table(self) -> list[tuple[str, Any, str]]:
        """(hyper-parameter, value, source) rows, for the CLI and the README."""
        values = {**self.preprocess, **self.train, **self.dataset}
        return [(name, values.get(name), source) for name, source in self.sources.items()]


PAPER = Recipe(
    name="paper",
    preprocess={"clip_len": 32, "size": 224, "max_clips": 4, "max_frames": 300},
    train={"model_size": "full", "batch_size": 16, "lr": 3e-4, "optimizer": "adam", "weight_decay": 0.0,
           "max_steps": 200_000, "epochs": 1000, "lr_step": 100_000, "lr_gamma": 0.1, "erase_prob": 0.5,
           "class_weighting": True, "freeze": False},
    dataset={"compression": "c23", "methods": ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")},
    sources={
        "clip_len": f"{OFFICIAL} clip_size: 32",
        "size": f"{OFFICIAL} imsize: 224",
        "compression": f"{OFFICIAL} dataset.real_train original_c23, fake_train *_c23",
        "methods": f"{OFFICIAL} dataset.fake_train (FaceShifter held out, the paper's unseen method)",
        "model_size": f"{OFFICIAL} classifier_type i3d_temporal_var_fix_dropout_tt_cfg (the full FTCN+TT)",
        "batch_size": f"{OFFICIAL} trainer.default.batch_size: 16",
        "lr": f"{OFFICIAL} trainer.default.init_lr: 3e-4",
        "optimizer": f"{ROOT} trainer.default.optim: adam",
        "max_steps": f"{OFFICIAL} trainer.default.total_step: 200000",
        "epochs": f"{OFFICIAL} trainer.default.total_epoch: 1000 (max_steps ends training first)",
        "lr_step": f"{OFFICIAL} trainer.default.lr_step: 100000",
        "lr_gamma": f"{CHOSEN}: 0.1 at each lr_step (the files name the step, not the factor)",
        "weight_decay": f"{CHOSEN}: 0, Adam's own default (the files set none for Adam)",
        "freeze": f"{OFFICIAL} trainer.default.freeze_backbone_step: 0 (never frozen)",
        "erase_prob": f"{CHOSEN}: 0.5; {OFFICIAL} turns on aug.earse with earse_type strong_black, a black "
                      "rectangle erased from every frame of a clip alike, but gives no probability",
        "class_weighting": f"{CHOSEN}: on; {OFFICIAL} samples real_train and each fake_train source with weight "
                           "1, and FF++ has four fakes per real",
        "max_clips": f"{CHOSEN}: 4 clips per video (the official code sampled clips from an LMDB of every "
                     "frame; 4 clips of 32x224x224 keep FF++ c23 near 100 GB)",
        "max_frames": f"{CHOSEN}: the first 300 frames of each video",
    },
)

RECIPES = {"paper": PAPER}


def recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise BadOption(f"unknown recipe {name!r}; one of {', '.join(RECIPES)}") from None


# -- the official setting files ---------------------------------------------------------------------------------

#: Keys of ftcn_tt.yaml (dotted) that map onto our fields: key -> (section, field).
_MAPPED = {
    "clip_size": ("preprocess", "clip_len"),
    "imsize": ("preprocess", "size"),
    "trainer.default.batch_size": ("train", "batch_size"),
    "trainer.default.init_lr": ("train", "lr"),
    "trainer.default.optim": ("train", "optimizer"),
    "trainer.default.total_step": ("train", "max_steps"),
    "trainer.default.total_epoch": ("train", "epochs"),
    "trainer.default.lr_step": ("train", "lr_step"),
}
#: Keys that describe the run, not the learning: read without effect.
_BOOKKEEPING = ("setting_name", "path.", "trainer.default.model_save_step", "trainer.default.log_step",
                "trainer.default.sample_step", "trainer.default.one_test_step", "trainer.default.validation_step",
                "trainer.default.test_batch_size", "trainer.default.apex_option", "max_to_keep", "data_source",
                "data_mode", "trainer_type", "dataset_type", "classifier_type", "test_on_train", "dataset.tests.",
                "dataset.aug_online.", "trainer.default.detach_step", "model.transformer.", "model.inco.")


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, dict):
        return {prefix.rstrip("."): values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def _number(value: Any, key: str, kind: type) -> Any:
    try:
        converted = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise BadOption(f"{OFFICIAL}: {key} is {value!r}, not a number") from None
    if converted <= 0:
        raise BadOption(f"{OFFICIAL}: {key} must be positive, not {value!r}")
    return converted


def recipe_from_yaml(path: str | Path) -> Recipe:
    """The paper recipe with the values of an official-format setting file (``ftcn_tt.yaml``) put over it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise BadOption(f"config file not found: {path.name}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadOption(f"{path.name} is not a YAML file: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise BadOption(f"{path.name} is not a setting file (expected a YAML mapping such as ftcn_tt.yaml)")
    flat = _flatten(loaded)
    sections: dict[str, dict[str, Any]] = {"preprocess": dict(PAPER.preprocess), "train": dict(PAPER.train),
                                           "dataset": dict(PAPER.dataset)}
    sources = dict(PAPER.sources)
    unused = []
    for key, value in flat.items():
        if key in _MAPPED:
            section, name = _MAPPED[key]
            kind = str if name == "optimizer" else float if name == "lr" else int
            sections[section][name] = str(value).lower() if kind is str else _number(value, key, kind)
            sources[name] = f"{path.name} {key}: {value}"
        elif key.startswith("dataset.real_train.") or key.startswith("dataset.fake_train."):
            continue  # read together below
        elif key == "trainer.default.freeze_backbone_step":
            sections["train"]["freeze"] = False
            if value:
                unused.append(f"{key} (freezing after N steps; --freeze freezes from the start)")
        elif key in ("aug.earse", "aug.earse_type"):
            if key == "aug.earse" and not value:
                sections["train"]["erase_prob"] = 0.0
                sources["erase_prob"] = f"{path.name} aug.earse: {value} (off)"
        elif not any(key == b.rstrip(".") or key.startswith(b) for b in _BOOKKEEPING):
            unused.append(key)
    fakes = [k.split(".")[-1] for k, v in flat.items() if k.startswith("dataset.fake_train.") and v]
    reals = [k.split(".")[-1] for k, v in flat.items() if k.startswith("dataset.real_train.") and v]
    if fakes or reals:
        compressions = {name.rsplit("_", 1)[-1] for name in fakes + reals if "_" in name}
        if len(compressions) != 1 or not fakes:
            raise BadOption(f"{path.name}: dataset.real_train/fake_train must name FaceForensics++ sources of one "
                            f"compression, such as original_c23 and Deepfakes_c23")
        sections["dataset"]["compression"] = compressions.pop()
        sections["dataset"]["methods"] = tuple(name.rsplit("_", 1)[0] for name in fakes)
        sources["compression"] = f"{path.name} dataset.real_train/fake_train"
        sources["methods"] = f"{path.name} dataset.fake_train"
    return replace(PAPER, name=path.stem, preprocess=sections["preprocess"], train=sections["train"],
                   dataset=sections["dataset"], sources=sources, unused=tuple(unused))
