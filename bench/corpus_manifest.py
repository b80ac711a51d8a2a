"""Rebuild the development corpus of real footage from the public repositories that committed it.

    git clone https://github.com/OWNER/NAME CLONES/OWNER/NAME      # once per repository in the sources
    .venv/bin/python bench/corpus_manifest.py CLONES OUT [--sources bench/realworld_sources.csv]
    .venv/bin/python bench/bench_realworld.py OUT/manifest.csv

The media have no licence to share, so the repository keeps only where each video was committed
(``bench/realworld_sources.csv``: repository, commit, path, label, dataset, and where the label comes from: the
dataset's own metadata or layout). This copies each video out of its clone at that commit (``git show``, so the
clone's checkout does not matter) into ``OUT/<repository>/<path>`` and writes ``OUT/manifest.csv`` (path,label,
dataset) for ``bench_realworld.py``. A repository without a clone is named and skipped.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
from pathlib import Path, PurePosixPath


def _clone(clones: Path, repository: str) -> Path | None:
    for candidate in (clones / repository, clones / repository.replace("/", "+"), clones / repository.split("/")[1]):
        if (candidate / ".git").exists() or (candidate / "HEAD").is_file():
            return candidate
    return None


def rebuild(sources: Path, clones: Path, out: Path) -> tuple[int, set[str]]:
    """Copy every video the sources list and write the manifest; (videos written, repositories missing)."""
    rows, missing = [], set()
    with open(sources, newline="") as handle:
        for source in csv.DictReader(handle):
            clone = _clone(clones, source["repository"])
            if clone is None:
                missing.add(source["repository"])
                continue
            relative = PurePosixPath(source["repository"].replace("/", "+")) / source["path"]
            if ".." in relative.parts:
                raise SystemExit(f"{source['path']}: a path outside the corpus")
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            blob = subprocess.run(["git", "-C", str(clone), "show", f"{source['commit']}:{source['path']}"],
                                  check=True, capture_output=True).stdout
            target.write_bytes(blob)
            rows.append({"path": str(relative), "label": source["label"], "dataset": source["dataset"]})
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "dataset"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clones", type=Path, help="folder of clones: OWNER/NAME or OWNER+NAME")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sources", type=Path, default=Path(__file__).with_name("realworld_sources.csv"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written, missing = rebuild(args.sources, args.clones, args.out)
    print(f"{written} videos, manifest {args.out / 'manifest.csv'}")
    for repository in sorted(missing):
        print(f"no clone of {repository} under {args.clones}: its videos were skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
