"""FTCN+TT forward speed and memory on this machine's CPU (or GPU when present), and the number formats and
runtimes that could run it, side by side against the official-equivalent fp32 path in one run.

For each model size, batch size and variant, a fresh child process builds the model, warms up, times
``--repeats`` forward passes and reports clips/s, its own peak RSS (so one variant's memory does not hide
another's) and how far its clip probabilities move from eager fp32 on the same input (the accuracy guard of
``ftcn.precision``: 0.005). Variants:

- ``fp32``: eager, ``torch.inference_mode``, contiguous tensors: the official-equivalent path, the reference;
- ``fp32_cl``: + ``torch.channels_last_3d`` memory format for weights and input;
- ``bf16_all_cl``: + bf16 autocast in every layer;
- ``bf16_cl``: + bf16 autocast with the early stages in fp32 (``ResNetTemporal.fp32_steps``), as the product runs
  bf16 (the torch runtime's default where the device computes bf16 natively);
- ``compile_fp32`` / ``compile_bf16``: ``torch.compile`` (Inductor) of the channels-last model (compile time is
  reported apart);
- ``onnxruntime``: the model exported to ONNX and run by ONNX Runtime's CPU provider, through ``ftcn.runtime``
  as the product runs it on a CPU (prepare time: the export and its check, or the cache);
- ``openvino``: OpenVINO in fp32 reading the same exported graph, through ``ftcn.runtime`` as the product runs it
  on a CPU (its default there);
- ``openvino_bf16``: the model converted by OpenVINO and compiled in bf16 (OpenVINO's own default on CPUs with
  bf16), for its speed: it fails the guard on trained models (``ftcn.runtime``).

Each row also gives the arithmetic rate it reached (the model's GFLOP per clip, counted by torch's
``FlopCounterMode``, times clips/s) against this CPU's ceiling measured in the same run: the
best of a few 4096x4096 matrix multiplies with the same threads, in fp32 and in bf16. A variant near the fp32
ceiling leaves nothing for fp32 to gain; only a cheaper number format could go further.

A runtime that is not installed is reported as skipped. Each row runs in a new interpreter (``children.py`` says
why not ``multiprocessing``).
The full model gets the parity fixtures' recipe weights (``tests/parity_recipe.py``; random, so speed and numerics
only, never a verdict); every model gets a random input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import torch  # noqa: E402
from children import in_child  # noqa: E402

from ftcn.models import build_model, config_for_size  # noqa: E402
from ftcn.precision import MAX_PROBABILITY_DELTA, compute_in, native_bf16  # noqa: E402

VARIANTS = ("fp32", "fp32_cl", "bf16_cl", "bf16_all_cl", "compile_fp32", "compile_bf16", "onnxruntime", "openvino",
            "openvino_bf16")
DEFAULT_VARIANTS = ("fp32", "fp32_cl", "bf16_all_cl", "bf16_cl", "compile_fp32", "onnxruntime", "openvino",
                    "openvino_bf16")


class Skipped(Exception):
    """The variant's runtime is not installed here."""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _model(size: str, device: str) -> torch.nn.Module:
    cfg = config_for_size(size)
    model = build_model(cfg)
    if size == "full":
        from tests.parity_recipe import load_json, parity_dir, recipe_state_dict

        model.load_state_dict(recipe_state_dict(load_json(parity_dir() / "ftcn_tt" / "keys.json"), 0))
    return model.eval().to(device)


def openvino_bf16(model: torch.nn.Module, example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model converted by OpenVINO and compiled in bf16 (its own default on CPUs with bf16): clips -> logits."""
    try:
        import openvino
    except ImportError:
        raise Skipped("openvino is not installed") from None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about the stem's steps
        graph = openvino.convert_model(model, example_input=example)
    compiled = openvino.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": torch.get_num_threads(),
                                                     "INFERENCE_PRECISION_HINT": "bf16"})
    return lambda clips: torch.from_numpy(compiled(clips.cpu().numpy())[0].copy())


def _runner(variant: str, model: torch.nn.Module, clips: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A no-argument function returning logits for ``clips`` the way the variant computes them."""
    device = clips.device
    if variant == "fp32":
        return lambda: model(clips)
    if variant in ("onnxruntime", "openvino"):
        from ftcn.runtime import available, engine_for

        if not available(variant):
            raise Skipped(f"{variant} is not installed")
        engine = engine_for(model, variant, "fp32")  # the product's CPU paths (export, check, cache)
        return lambda: engine(clips)
    if variant == "openvino_bf16":
        logits = openvino_bf16(model, clips)
        return lambda: logits(clips)
    model = model.to(memory_format=torch.channels_last_3d)
    clips = clips.contiguous(memory_format=torch.channels_last_3d)
    dtype = torch.bfloat16 if "bf16" in variant else torch.float32
    if variant == "bf16_all_cl":
        model.resnet.fp32_steps = 0
    runner = torch.compile(model) if variant.startswith("compile") else model

    def run() -> torch.Tensor:
        with compute_in(dtype, device):
            return runner(clips).float()

    return run


def _measure(size: str, batch: int, variant: str, repeats: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _model(size, device)
    cfg = model.cfg
    clips = torch.randn(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device=device)
    rss_model = _peak_rss_mb()
    row: dict[str, Any] = {"size": size, "batch": batch, "variant": variant, "device": device, "threads": threads}
    with torch.inference_mode():
        reference = torch.sigmoid(model(clips)).cpu()
        try:
            start = time.perf_counter()
            runner = _runner(variant, model, clips)
            runner()  # warm-up (and export, conversion or compilation)
            if device == "cuda":
                torch.cuda.synchronize()
            prepare_s = time.perf_counter() - start
        except Skipped as reason:
            return {**row, "skipped": str(reason)}
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = runner()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    delta = float((torch.sigmoid(out.float().cpu()) - reference).abs().max())
    return {**row, "median_s": median, "clips_per_s": batch / median, "prepare_s": prepare_s,
            "rss_after_build_mb": rss_model, "peak_rss_mb": _peak_rss_mb(), "max_abs_probability_delta": delta}


def gflop_per_clip(size: str) -> float:
    """The model's arithmetic for one clip (a multiply-add counts 2), counted during one forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = config_for_size(size)
    model = build_model(cfg).eval()
    clips = torch.zeros(1, 3, cfg.clip_len, cfg.image_size, cfg.image_size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(clips)
    return counter.get_total_flops() / 1e9


def _gemm_ceiling(threads: int, side: int = 4096, repeats: int = 4) -> dict[str, float]:
    torch.set_num_threads(threads)
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(side, side).to(dtype), torch.randn(side, side).to(dtype)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        rates[name] = 2 * side**3 / best / 1e9
    return rates


def run(size: str, batch: int, variant: str, repeats: int, threads: int) -> dict:
    return {"size": size, "batch": batch, "variant": variant, **in_child(_measure, size, batch, variant, repeats,
                                                                          threads)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="full,small,tiny")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"any of {', '.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="small and tiny models, eager variants: about a minute")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.variants, args.repeats = "small,tiny", "fp32,fp32_cl,bf16_cl", 2

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__} on {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"{device.upper()}, native bf16: {native_bf16(device)}; recipe weights (speed and numerics, no verdicts)")
    ceiling = in_child(_gemm_ceiling, args.threads) if device == "cpu" else None
    if ceiling and "error" in ceiling:
        print(f"CPU ceiling not measured: {ceiling['error']}")
        ceiling = None
    if ceiling:
        print(f"CPU ceiling, best 4096x4096 matrix multiply on {args.threads} threads: fp32 {ceiling['fp32']:.0f} "
              f"GFLOP/s, bf16 {ceiling['bf16']:.0f} GFLOP/s")
    print(f"{'model':>6} {'batch':>5} {'variant':>13} {'clips/s':>8} {'s/batch':>8} {'x fp32':>7} "
          f"{'max |dp|':>9} {'peak RSS MB':>11} {'prepare s':>9} {'GFLOP/s':>8} {'% fp32 ceiling':>14}")
    rows = []
    for size in args.sizes.split(","):
        gflop = gflop_per_clip(size)
        print(f"{size}: {gflop:.1f} GFLOP per clip")
        for batch in map(int, args.batches.split(",")):
            baseline = None
            for variant in args.variants.split(","):
                row = run(size, batch, variant, args.repeats, args.threads)
                rows.append(row)
                if "error" in row or "skipped" in row:
                    print(f"{size:>6} {batch:>5} {variant:>13} {row.get('error') or 'skipped: ' + row['skipped']}")
                    continue
                if variant == "fp32":
                    baseline = row["median_s"]
                row["speedup_vs_fp32"] = baseline / row["median_s"] if baseline else None
                row["within_guard"] = row["max_abs_probability_delta"] <= MAX_PROBABILITY_DELTA
                row["gflop_per_s"] = gflop * row["clips_per_s"]
                share = f"{100 * row['gflop_per_s'] / ceiling['fp32']:.0f} %" if ceiling else "-"
                ratio = f"{row['speedup_vs_fp32']:.2f}" if baseline else "-"
                print(f"{size:>6} {batch:>5} {variant:>13} {row['clips_per_s']:>8.2f} {row['median_s']:>8.3f} "
                      f"{ratio:>7} {row['max_abs_probability_delta']:>9.5f} {row['peak_rss_mb']:>11.0f} "
                      f"{row['prepare_s']:>9.1f} {row['gflop_per_s']:>8.0f} {share:>14}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu_ceiling_gflop_per_s": ceiling, "rows": rows}, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
