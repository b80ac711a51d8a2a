"""FTCN+TT forward speed and memory on this machine's CPU (or GPU when present).

For each model size, batch size and execution variant, a fresh child process builds the model, warms up, times
``--repeats`` forward passes and reports clips/s and its own peak RSS (so one variant's memory does not hide
another's). Variants:

- ``no_grad``: eager, ``torch.no_grad`` (the baseline the official script uses);
- ``inference_mode``: eager, ``torch.inference_mode`` (no version counters / autograd bookkeeping);
- ``channels_last``: inference_mode + ``torch.channels_last_3d`` memory format for weights and input;
- ``compile``: inference_mode + ``torch.compile`` (Inductor; compile time is reported separately).

Weights are random: this measures speed, never a verdict.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ftcn.models import build_model, config_for_size  # noqa: E402

VARIANTS = ("no_grad", "inference_mode", "channels_last", "compile")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _measure(size: str, batch: int, variant: str, repeats: int, threads: int, queue: mp.Queue) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = config_for_size(size)
    model = build_model(cfg).to(device)
    clips = torch.randn(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device=device)
    rss_model = _peak_rss_mb()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last_3d)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    runner = model
    compile_s = 0.0
    if variant == "compile":
        runner = torch.compile(model)
    context = torch.no_grad if variant == "no_grad" else torch.inference_mode
    with context():
        start = time.perf_counter()
        reference = runner(clips)  # warm-up (and compilation)
        if device == "cuda":
            torch.cuda.synchronize()
        if variant == "compile":
            compile_s = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = runner(clips)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    with torch.inference_mode():
        baseline = model(clips) if variant != "compile" else reference
    median = sorted(times)[len(times) // 2]
    queue.put(
        {
            "size": size,
            "batch": batch,
            "variant": variant,
            "device": device,
            "threads": threads,
            "median_s": median,
            "clips_per_s": batch / median,
            "compile_s": compile_s,
            "rss_after_build_mb": rss_model,
            "peak_rss_mb": _peak_rss_mb(),
            "max_abs_diff_vs_eager": float((out - baseline).abs().max()),
        }
    )


def run(size: str, batch: int, variant: str, repeats: int, threads: int) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(size, batch, variant, repeats, threads, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        return {"size": size, "batch": batch, "variant": variant, "error": f"exit code {process.exitcode}"}
    return queue.get()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="full,small,tiny")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="small and tiny models, no compile: about a minute")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.variants, args.repeats = "small,tiny", "no_grad,inference_mode,channels_last", 2

    print(f"torch {torch.__version__} on {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"{'CUDA' if torch.cuda.is_available() else 'CPU'}; random weights (speed only, no verdicts)")
    header = f"{'model':>6} {'batch':>5} {'variant':>15} {'clips/s':>9} {'s/batch':>8} {'peak RSS MB':>11} {'compile s':>9}"
    print(header)
    rows = []
    for size in args.sizes.split(","):
        for batch in map(int, args.batches.split(",")):
            for variant in args.variants.split(","):
                row = run(size, batch, variant, args.repeats, args.threads)
                rows.append(row)
                if "error" in row:
                    print(f"{size:>6} {batch:>5} {variant:>15} failed: {row['error']}")
                    continue
                print(f"{size:>6} {batch:>5} {variant:>15} {row['clips_per_s']:>9.2f} {row['median_s']:>8.3f} "
                      f"{row['peak_rss_mb']:>11.0f} {row['compile_s']:>9.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
