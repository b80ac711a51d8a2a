"""timeline.png: each face's per-frame score against the decision threshold (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_timeline_plot(result: dict[str, Any], out_path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_path = Path(out_path)
    fps = result["input"]["fps"] or 25.0
    figure, axes = plt.subplots(figsize=(9, 3.2), dpi=110)
    try:
        for track in result["tracks"]:
            times = [frame / fps for frame in track["frames"]]
            scores = [float("nan") if s is None else s for s in track["timeline"]]
            axes.plot(times, scores, linewidth=1.6, label=f"face {track['id']} ({track['verdict'].lower()})")
        axes.axhline(result["threshold"], color="black", linestyle="--", linewidth=1,
                     label=f"threshold {result['threshold']:.3g}")
        threshold = result["threshold"]
        if 0.05 <= threshold <= 0.95:
            axes.set_ylim(0, 1)
        else:  # e.g. the official model (threshold 0.0026): a logit axis shows scores near 0 or 1 apart
            axes.set_yscale("logit")
            axes.set_ylim(1e-5, 1 - 1e-5)
        duration = result["input"]["frames_read"] / fps
        axes.set_xlim(0, max(duration, 1 / fps))
        axes.set_xlabel("time (s)")
        axes.set_ylabel("forgery score")
        title = f"{result['input']['filename']}: {result['verdict']}"
        if result["score"] is not None:
            title += f" (score {result['score']:.3f})"
        axes.set_title(title)
        if not result["tracks"]:
            axes.text(0.5, 0.5, "no face found", transform=axes.transAxes, ha="center", va="center")
        axes.legend(loc="upper right", fontsize=8)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(out_path)
    finally:
        plt.close(figure)
    return out_path
