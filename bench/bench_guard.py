"""The accuracy guard on trained models: how far each faster way to run the model moves clip probabilities.

The speed issue's rule: a way of running the model may be a default only if it moves no clip probability by more
than 0.005 (``ftcn.precision.MAX_PROBABILITY_DELTA``) against torch fp32 (the official-equivalent arithmetic),
with the parity recipe weights (``bench/bench_model.py`` shows that) *and* on trained models, measured here. It
takes the trained models of one or more ``bench/bench_quality.py --out`` folders (``train-*/model-*/best.pt``, each
beside the clips it was trained on) and scores every clip of their datasets (train, validation and test) with:

- ``onnxruntime`` and ``openvino``: the product's CPU runtimes in fp32 (``ftcn.runtime``);
- ``openvino_bf16``: OpenVINO's own default on CPUs with bf16;
- ``torch_bf16_all``: bf16 autocast in every layer; ``torch_bf16``: with the early stages in fp32 (the product's
  explicit ``--precision bf16``).

It prints, per model, the largest |Δ probability| of each way and whether it is within the guard. Example:

    .venv/bin/python bench/bench_quality.py --out /tmp/bq          # trains the models (about 15 minutes)
    .venv/bin/python bench/bench_guard.py /tmp/bq
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import torch  # noqa: E402
from bench_model import openvino_bf16  # noqa: E402

from ftcn.checkpoints import load_model  # noqa: E402
from ftcn.datasets.split import load_split_rows  # noqa: E402
from ftcn.datasets.storage import open_store  # noqa: E402
from ftcn.models import FTCN  # noqa: E402
from ftcn.precision import MAX_PROBABILITY_DELTA, compute_in  # noqa: E402
from ftcn.runtime import available, engine_for  # noqa: E402
from ftcn.training.data import ClipDataset, clip_refs  # noqa: E402

WAYS = ("onnxruntime", "openvino", "openvino_bf16", "torch_bf16_all", "torch_bf16")
BATCH = 8


def trained_clips(checkpoint: Path, model: FTCN) -> torch.Tensor:
    """Every clip of the dataset the model was trained on (``<run>/clips`` beside ``<run>/model-*/``), normalised."""
    store = open_store(checkpoint.parents[1] / "clips")
    rows = load_split_rows(store)
    dataset = ClipDataset(store, [r for split in ("train", "val", "test") for r in clip_refs(rows, split)], model.cfg)
    dataset.check_shape()
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def _batched(logits: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.sigmoid(logits(clips[i:i + BATCH]).float()) for i in range(0, len(clips), BATCH)])


def _torch_bf16(model: FTCN, early_fp32: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(clips: torch.Tensor) -> torch.Tensor:
        steps = model.resnet.fp32_steps
        model.resnet.fp32_steps = steps if early_fp32 else 0
        try:
            with torch.inference_mode(), compute_in(torch.bfloat16, clips.device):
                return model(clips)
        finally:
            model.resnet.fp32_steps = steps
    return run


def ways_for(model: FTCN, example: torch.Tensor) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    ways: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for runtime in ("onnxruntime", "openvino"):
        if available(runtime):
            engine = engine_for(model, runtime, "fp32")
            ways[runtime] = lambda clips, engine=engine: engine(clips)
    if available("openvino"):
        ways["openvino_bf16"] = openvino_bf16(model, example)
    ways["torch_bf16_all"] = _torch_bf16(model, early_fp32=False)
    ways["torch_bf16"] = _torch_bf16(model, early_fp32=True)
    return ways


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="bench_quality.py --out folders")
    args = parser.parse_args(argv)
    checkpoints = sorted(p for folder in args.folders for p in folder.glob("train-*/model-*/best.pt"))
    if not checkpoints:
        raise SystemExit("no train-*/model-*/best.pt under the folders given (run bench_quality.py --out first)")
    print(f"guard {MAX_PROBABILITY_DELTA}; max |Δ probability| against torch fp32 over every clip of the model's "
          f"dataset")
    print(f"{'model':<44} {'clips':>5} " + " ".join(f"{w:>14}" for w in WAYS))
    worst = dict.fromkeys(WAYS, 0.0)
    for checkpoint in checkpoints:
        model, _ = load_model(checkpoint)
        model.eval()
        clips = trained_clips(checkpoint, model)
        with torch.inference_mode():
            reference = _batched(model, clips)
        cells = []
        ways = ways_for(model, clips[:2])
        for way in WAYS:
            run = ways.get(way)
            if run is None:
                cells.append(f"{'skipped':>14}")
                continue
            delta = float((_batched(run, clips) - reference).abs().max())
            worst[way] = max(worst[way], delta)
            cells.append(f"{delta:>13.5f}{'' if delta <= MAX_PROBABILITY_DELTA else '!'}")
        name = str(checkpoint.relative_to(checkpoint.parents[3]))  # <folder>/train-*/model-*/best.pt
        print(f"{name:<44} {len(clips):>5} " + " ".join(cells), flush=True)
    print(f"{'worst':<44} {'':>5} " + " ".join(f"{worst[w]:>14.5f}" for w in WAYS))
    print("within the guard: " + ", ".join(w for w in WAYS if worst[w] <= MAX_PROBABILITY_DELTA) + "; ! marks a "
          "model the way moves by more")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
