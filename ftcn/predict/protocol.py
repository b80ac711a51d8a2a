"""The paper's cross-dataset table (``ftcn protocol``): a model trained on FaceForensics++ c23, scored on the test
videos of four datasets it never saw, video-level AUC beside the paper's figure for FTCN+TT (Zheng et al., ICCV
2021, Table 3).

| column | test videos | paper AUC (%) |
|---|---|---|
| Celeb-DF | v2's List_of_testing_videos.txt (518) | 86.9 |
| DFDC | the test set (labels.csv), or whatever test split the DFDC folder holds | 74.0 |
| FaceShifter | FaceForensics++ test split: FaceShifter c23 fakes against the split's c23 reals | 98.8 |
| DeeperForensics | its test split (end_to_end) against the FaceForensics++ c23 originals it swapped into | 98.8 |

A video that two columns share (FaceForensics++'s originals serve FaceShifter and DeeperForensics) is scored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcn.datasets.sources import VideoEntry
from ftcn.datasets.standard import DatasetOptions, read_dataset
from ftcn.predict.batch import Item, figures


@dataclass(frozen=True)
class Benchmark:
    name: str  # the paper's column
    kind: str  # the dataset it reads
    paper_auc: float  # FTCN+TT's video-level AUC in the paper, percent
    methods: tuple[str, ...] = ()  # FaceForensics++ methods to read (FaceShifter for its column)


BENCHMARKS = (
    Benchmark("Celeb-DF", "celebdf", 86.9),
    Benchmark("DFDC", "dfdc", 74.0),
    Benchmark("FaceShifter", "ffpp", 98.8, ("FaceShifter",)),
    Benchmark("DeeperForensics", "dfo", 98.8),
)


def benchmark_videos(benchmark: Benchmark, root: Path, options: DatasetOptions) -> list[VideoEntry]:
    """The benchmark's test split, read from the dataset as it is on disk."""
    if benchmark.methods:
        options = DatasetOptions(**{**vars(options), "methods": benchmark.methods})
    return [e for e in read_dataset(benchmark.kind, root, options) if e.split == "test"]


def plan(roots: dict[str, Path], options: DatasetOptions) -> tuple[list[Item], dict[str, list[str]]]:
    """The items to score (each file once) and, per benchmark given a root, the item names it is judged on."""
    items: dict[Path, Item] = {}
    members: dict[str, list[str]] = {}
    for benchmark in BENCHMARKS:
        root = roots.get(benchmark.kind)
        if root is None:
            continue
        names = []
        for entry in benchmark_videos(benchmark, root, options):
            key = entry.path.resolve()
            if key not in items:
                items[key] = Item(f"{benchmark.kind}/{entry.video_id}", entry.path, entry.label, entry.method)
            names.append(items[key].name)
        members[benchmark.name] = names
    return list(items.values()), members


def table(rows: list[dict[str, Any]], members: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One row per benchmark: its figures on the scored videos, and the paper's AUC."""
    by_name = {row["video"]: row for row in rows}
    lines = []
    for benchmark in BENCHMARKS:
        names = members.get(benchmark.name)
        measured = figures([by_name[n] for n in names]) if names is not None else None
        lines.append({"benchmark": benchmark.name, "dataset": benchmark.kind, "paper_auc": benchmark.paper_auc,
                      "measured": measured,
                      "failed": sum(bool(by_name[n]["error"]) for n in names) if names is not None else None})
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def format_table(lines: list[dict[str, Any]]) -> str:
    """The table as Markdown: measured AUC, EER and AP in percent beside the paper's AUC."""
    out = ["| benchmark | videos (real / fake) | scored | AUC | EER | AP | paper AUC |",
           "|---|---|---|---|---|---|---|"]
    for line in lines:
        measured = line["measured"]
        if measured is None:
            out.append(f"| {line['benchmark']} | not given | - | - | - | - | {line['paper_auc']:.1f} |")
            continue
        out.append(f"| {line['benchmark']} | {measured['videos']} ({measured['real']} / {measured['fake']}) | "
                   f"{measured['scored']} | {_percent(measured['auc'])} | {_percent(measured['eer'])} | "
                   f"{_percent(measured['ap'])} | {line['paper_auc']:.1f} |")
    return "\n".join(out)
