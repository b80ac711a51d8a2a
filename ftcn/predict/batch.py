"""Many videos through one loaded model and detector, the paper's protocol on raw videos (``ftcn predict A B ...``,
``ftcn predict FOLDER``, ``ftcn predict labels.csv``, ``ftcn evaluate MODEL labels.csv``).

Each video's result goes to a folder of its own under ``out``; a video whose ``result.json`` is already there is
not scored again, so an interrupted run resumes where it stopped. A video that fails is recorded with its reason
(``error.json``, and the summary) and the run goes on. ``summary.csv`` lists video, label, method, verdict, score,
faces and coverage; with labels, :func:`video_report` gives what the paper's tables give: video-level AUC,
accuracy at the model's threshold, and the false-positive rate on real videos, overall and per forgery method
(each method's fakes against all real videos).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcn.datasets.sources import VIDEO_SUFFIXES, parse_label
from ftcn.errors import FtcnError, InvalidSource
from ftcn.predict.summary import summary
from ftcn.training.ranking import average_precision, equal_error_rate, roc_auc

SUMMARY_FIELDS = ["video", "label", "method", "verdict", "score", "threshold", "faces", "coverage", "reasons", "error"]


@dataclass(frozen=True)
class Item:
    """One video of a batch: its name in the summary, its file, and its label and forgery method if known."""

    name: str
    path: Path
    label: str | None = None  # "real" | "fake"
    method: str = ""


def items_from(sources: list[Path]) -> list[Item]:
    """The videos named by ``sources``: video files, folders (``real/`` and ``fake/`` give labels), or CSV files
    of ``path,label[,method]`` (a header row names the columns; paths relative to the CSV)."""
    items: list[Item] = []
    for source in sources:
        if source.is_dir():
            items += _from_folder(source)
        elif source.suffix.lower() in (".csv", ".txt"):
            items += _from_csv(source)
        elif source.is_file():
            items.append(Item(source.name, source))
        else:
            raise InvalidSource(f"{source} is not a video, a folder or a CSV file")
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise InvalidSource(f"the same video is named twice: {', '.join(repeated[:3])}")
    if not items:
        raise InvalidSource("no videos to score")
    return items


def items_of(entries: list[Any], prefix: str = "") -> list[Item]:
    """Items of a standard dataset's entries (``ftcn.datasets.standard``), named ``prefix`` + their video id."""
    return [Item(prefix + e.video_id, e.path, e.label, e.method) for e in entries]


def _from_folder(root: Path) -> list[Item]:
    labelled = (root / "real").is_dir() and (root / "fake").is_dir()
    items = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            relative = path.relative_to(root)
            label = relative.parts[0] if labelled and relative.parts[0] in ("real", "fake") else None
            items.append(Item(relative.as_posix(), path, label))
    return items


def _from_csv(manifest: Path) -> list[Item]:
    with open(manifest, newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and "".join(row).strip()]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    columns = header if "path" in header else ["path", "label", "method"]
    if "path" in header:
        rows = rows[1:]
    items, missing = [], []
    for number, row in enumerate(rows, start=1):
        cells = dict(zip(columns, (cell.strip() for cell in row)))
        if not cells.get("path"):
            raise InvalidSource(f"{manifest.name}, row {number}: no path")
        label = parse_label(cells["label"], f"{manifest.name}, row {number}") if cells.get("label") else None
        path = Path(cells["path"])
        resolved = path if path.is_absolute() else manifest.parent / path
        if not resolved.is_file():
            missing.append(cells["path"])
        items.append(Item(cells["path"], resolved, label, cells.get("method", "")))
    if missing:
        raise InvalidSource(f"{manifest.name} lists {len(missing)} missing videos, e.g. {', '.join(missing[:3])}")
    return items


def folder_for(out: Path, item: Item) -> Path:
    """The video's own output folder: its name with anything but letters, digits, '.', '-' and '_' made '_'."""
    return out / re.sub(r"[^\w.-]+", "_", item.name).strip("_")


def summary_row(item: Item, result: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"video": item.name, "label": item.label or "", "method": item.method, "error": error or ""}
    if result is not None:
        brief = summary(result)
        row.update(verdict=brief["verdict"], score=brief["score"], threshold=brief["threshold"], faces=brief["faces"],
                   coverage=(brief["coverage"] or {}).get("share"), reasons="; ".join(brief["inconclusive_reasons"]))
    return row


def run_batch(items: list[Item], out: Path, score: Callable[[Item, Path], dict[str, Any]],
              progress: Callable[[str, int, int | None], None] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Score every item not scored yet (``score(item, folder)`` returns the result document and writes what it
    writes into ``folder``); (summary rows of every item, how many were scored now). Writes ``summary.csv``."""
    report = progress or (lambda stage, done, total: None)
    rows, scored = [], 0
    for index, item in enumerate(items):
        folder = folder_for(out, item)
        done = folder / "result.json"
        result, error = None, None
        if done.exists():
            result = json.loads(done.read_text())
        else:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                result = score(item, folder)
                (folder / "error.json").unlink(missing_ok=True)
                partial = folder / "result.json.partial"
                partial.write_text(json.dumps(result, indent=2))
                partial.replace(done)  # whole or absent: a run stopped mid-write scores the video again
            except (FtcnError, OSError) as exc:
                error = str(exc)
                (folder / "error.json").write_text(json.dumps({"video": item.name, "error": error}))
            scored += 1
        rows.append(summary_row(item, result, error))
        report("videos", index + 1, len(items))
    write_summary(out / "summary.csv", rows)
    return rows, scored


def write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AUC over the videos that got a score; accuracy and false-positive rate over all labelled videos (a video
    without a verdict of FAKE counts as called real: NO_FACE, INCONCLUSIVE and failures are not detections)."""
    scored = [r for r in rows if r.get("score") not in (None, "")]
    labels = [1.0 if r["label"] == "fake" else 0.0 for r in scored]
    scores = [float(r["score"]) for r in scored]
    called_fake = [r.get("verdict") == "FAKE" for r in rows]
    correct = [fake == (r["label"] == "fake") for r, fake in zip(rows, called_fake)]
    reals = [fake for r, fake in zip(rows, called_fake) if r["label"] == "real"]
    return {"videos": len(rows), "real": sum(r["label"] == "real" for r in rows),
            "fake": sum(r["label"] == "fake" for r in rows), "scored": len(scored),
            "inconclusive": sum(r.get("verdict") == "INCONCLUSIVE" for r in rows),
            "auc": roc_auc(labels, scores) if scored else None,
            "eer": equal_error_rate(labels, scores) if scored else None,
            "ap": average_precision(labels, scores) if scored else None,
            "accuracy": sum(correct) / len(rows) if rows else None,
            "false_positive_rate": sum(reals) / len(reals) if reals else None}


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Video-level AUC, EER, average precision, accuracy and false-positive rate of labelled rows."""
    return _figures([r for r in rows if r.get("label") in ("real", "fake")])


def video_report(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Video-level AUC, accuracy at the threshold and false-positive rate on reals: overall and, when methods are
    named, per method (that method's fakes with every real video). None without labelled videos."""
    labelled = [r for r in rows if r.get("label") in ("real", "fake")]
    if not labelled:
        return None
    reals = [r for r in labelled if r["label"] == "real"]
    methods = sorted({r["method"] for r in labelled if r["label"] == "fake" and r.get("method")})
    return {"overall": _figures(labelled),
            "methods": {m: _figures(reals + [r for r in labelled if r["label"] == "fake" and r["method"] == m])
                        for m in methods}}
