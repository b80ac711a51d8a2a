"""Training throughput: clips/s of forward + backward + AdamW step, for the tiny and full configs.

CPU always; CUDA too when present (bf16 autocast there, as training uses). Random clips and weights: this
measures speed only. ``--freeze`` measures head-only training (backbone without gradients).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ftcn.models import build_model, config_for_size  # noqa: E402


def measure(size: str, batch: int, steps: int, device: str, freeze: bool) -> dict:
    torch.manual_seed(0)
    model = build_model(config_for_size(size)).to(device)
    if freeze:
        model.freeze_backbone()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cfg = model.cfg
    clips = torch.randn(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device=device)
    labels = torch.randint(0, 2, (batch,), device=device).float()
    times = []
    for step in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model(clips)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    return {"size": size, "device": device, "batch": batch, "freeze": freeze, "clips_per_s": batch / median,
            "s_per_step": median, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; random data and weights (speed only)")
    print(f"{'model':>6} {'device':>6} {'batch':>5} {'freeze':>6} {'clips/s':>9} {'s/step':>8} {'peak RSS MB':>11}")
    for device in devices:
        for size, batch in (("tiny", 8), ("full", 2)):
            for freeze in (False, True):
                row = measure(size, batch, args.steps, device, freeze)
                print(f"{size:>6} {device:>6} {batch:>5} {str(freeze):>6} {row['clips_per_s']:>9.2f} "
                      f"{row['s_per_step']:>8.3f} {row['peak_rss_mb']:>11.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
