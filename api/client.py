"""``ftcn-client``: a small client of the REST API (what the README and the demo use).

    ftcn-client predict clip.mp4 --wait          ftcn-client predict https://example.com/v.mp4 --wait
    ftcn-client preprocess dataset.zip --wait    ftcn-client train --dataset ID --freeze --wait
    ftcn-client status JOB_ID                    ftcn-client download JOB_ID --out results/
    ftcn-client batch videos.csv --wait          (rows: a file or URL, and optionally real/fake)

The API's base URL comes from ``--api`` or ``FTCN_API_URL`` (default http://127.0.0.1:8000), the bearer token
from ``--token`` or ``FTCN_TOKEN`` (made by ``ftcn-admin token create``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from jobs.states import JobStatus


class ApiError(RuntimeError):
    pass


class Client:
    def __init__(self, base: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def _check(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                problem = response.json()
                raise ApiError(f"{response.status_code} {problem.get('title')}: {problem.get('detail')}")
            except ValueError:
                raise ApiError(f"{response.status_code}: {response.text[:200]}") from None
        return response.json()

    def absolute(self, link: str) -> str:
        return link if link.startswith("http") else self.base + link

    def predict(self, source: str, model_id: str | None = None, options: dict | None = None,
                webhook_url: str | None = None, reuse: bool = True) -> dict[str, Any]:
        fields = {**({"model_id": model_id} if model_id else {}), **({"webhook_url": webhook_url} if webhook_url else {})}
        flags = {} if reuse else {"reuse": False}
        if source.startswith(("http://", "https://")):
            body = {"video_url": source, **fields, **flags, **({"options": options} if options else {})}
            return self._check(self.http.post(f"{self.base}/jobs/predict", json=body, timeout=self.timeout))
        path = Path(source)
        if path.stat().st_size > self.me().get("direct_upload_mb", 32) * 1024 * 1024:
            body = {"upload_id": self.upload(path), **fields, **flags, **({"options": options} if options else {})}
            return self._check(self.http.post(f"{self.base}/jobs/predict", json=body, timeout=self.timeout))
        with open(path, "rb") as handle:
            data = {**fields, **({"options": json.dumps(options)} if options else {}),
                    **({"reuse": "false"} if not reuse else {})}
            return self._check(self.http.post(f"{self.base}/jobs/predict", files={"video": (path.name, handle)},
                                             data=data, timeout=self.timeout))

    def batch(self, rows: list[tuple[str, str | None]], name: str | None = None, model_id: str | None = None,
              webhook_url: str | None = None, reuse: bool = True) -> dict[str, Any]:
        """One batch of (file or URL, label) rows: files go by direct upload first, URLs as they are."""
        items = []
        for source, label in rows:
            item: dict[str, Any] = {"name": source if source.startswith(("http://", "https://"))
                                    else Path(source).name}
            if source.startswith(("http://", "https://")):
                item["video_url"] = source
            else:
                item["upload_id"] = self.upload(Path(source))
            if label:
                item["label"] = label
            items.append(item)
        body = {"items": items, **({"name": name} if name else {}), **({"model_id": model_id} if model_id else {}),
                **({"webhook_url": webhook_url} if webhook_url else {}), **({} if reuse else {"reuse": False})}
        return self._check(self.http.post(f"{self.base}/batches", json=body, timeout=max(self.timeout, 300)))

    def batch_status(self, batch_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"{self.base}/batches/{batch_id}", timeout=self.timeout))

    def wait_batch(self, batch_id: str, timeout: float = 24 * 3600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            batch = self.batch_status(batch_id)
            done = batch["total"] - batch["counts"]["queued"] - batch["counts"]["running"]
            if sys.stdout.isatty():
                print(f"  batch {done}/{batch['total']} finished".ljust(60), end="\r", flush=True)
            if batch["status"] == "finished":
                return batch
            if time.monotonic() > deadline:
                raise ApiError(f"batch {batch_id} still running after {timeout:.0f} s")
            time.sleep(2.0)

    def me(self) -> dict[str, Any]:
        return self._check(self.http.get(f"{self.base}/me", timeout=self.timeout))

    def upload(self, path: Path) -> str:
        """A direct upload: a signed target from the API, the file streamed to it; returns the upload id."""
        target = self._check(self.http.post(f"{self.base}/uploads", json={"filename": path.name},
                                            timeout=self.timeout))
        with open(path, "rb") as handle:
            answer = requests.request(target["method"], self.absolute(target["url"]), data=handle,
                                      headers=target["headers"], timeout=max(self.timeout, 600))
        if answer.status_code >= 300:
            raise ApiError(f"the upload was refused: HTTP {answer.status_code} {answer.text[:200]}")
        return target["upload_id"]

    def preprocess(self, archive: Path, options: dict | None = None) -> dict[str, Any]:
        with open(archive, "rb") as handle:
            return self._check(self.http.post(f"{self.base}/jobs/preprocess", files={"archive": (archive.name, handle)},
                                             data={"options": json.dumps(options or {})}, timeout=self.timeout))

    def train(self, **body: Any) -> dict[str, Any]:
        return self._check(self.http.post(f"{self.base}/jobs/train", json=body, timeout=self.timeout))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"{self.base}/jobs/{job_id}", timeout=self.timeout))

    def wait(self, job_id: str, on_update: Callable[[dict[str, Any]], None] | None = None,
             timeout: float = 3600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_update:
                on_update(job)
            if JobStatus(job["status"]).finished:
                return job
            if time.monotonic() > deadline:
                raise ApiError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(1.0)

    def download(self, job_id: str, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, link in self.job(job_id)["links"].items():
            response = requests.get(self.absolute(link), timeout=self.timeout)
            response.raise_for_status()
            suffix = Path(link.split("?")[0]).suffix
            target = out / f"{name}{suffix}"
            target.write_bytes(response.content)
            written.append(target)
        return written


def progress_line(job: dict[str, Any]) -> None:
    """One refreshing line on a terminal; plain lines otherwise."""
    text = f"  {job['kind']:<10} {job['status']:<9} {job['progress']:5.1f}%  {job.get('stage') or ''}"
    end = "\r" if sys.stdout.isatty() and job["status"] in ("queued", "running") else "\n"
    if end == "\n" and job["status"] in ("queued", "running"):
        return
    print(text.ljust(60), end=end, flush=True)


LABELS = {"real": "real", "0": "real", "fake": "fake", "1": "fake"}


def read_batch_file(path: Path) -> list[tuple[str, str | None]]:
    """Rows of a batch file: ``video[,label]`` per line (a header naming ``video``/``path``/``url`` and ``label``
    is allowed); labels real/fake (or 0/1, 1 = fake); files relative to the CSV's folder."""
    with open(path, newline="") as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle) if row and "".join(row).strip()]
    if rows and rows[0][0].lower() in ("video", "path", "url", "file"):
        rows = rows[1:]
    out: list[tuple[str, str | None]] = []
    for number, row in enumerate(rows, start=1):
        source, label = row[0], (row[1].lower() if len(row) > 1 and row[1] else None)
        if label is not None and label not in LABELS:
            raise ApiError(f"{path.name}, row {number}: label {row[1]!r} is not real, fake, 0 or 1")
        if not source.startswith(("http://", "https://")):
            local = Path(source) if Path(source).is_absolute() else path.parent / source
            if not local.is_file():
                raise ApiError(f"{path.name}, row {number}: no such file {source}")
            source = str(local)
        out.append((source, LABELS[label] if label else None))
    if not out:
        raise ApiError(f"{path.name} lists no videos")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftcn-client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default=os.environ.get("FTCN_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("FTCN_TOKEN"), help="API token (or FTCN_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict")
    predict.add_argument("source", help="a video file or an http(s) URL")
    predict.add_argument("--model-id")
    predict.add_argument("--wait", action="store_true")
    predict.add_argument("--webhook-url", help="called (signed, Standard Webhooks) when the job ends")
    predict.add_argument("--no-reuse", action="store_true", help="run the model even if this video was answered")
    batch = commands.add_parser("batch", help="many videos at once, with their labels if known")
    batch.add_argument("file", type=Path, help="CSV: video (file or URL)[,label real/fake] per row")
    batch.add_argument("--name")
    batch.add_argument("--model-id")
    batch.add_argument("--webhook-url", help="called once, when the last job of the batch ends")
    batch.add_argument("--no-reuse", action="store_true")
    batch.add_argument("--wait", action="store_true", help="wait for the batch and print its report")
    pre = commands.add_parser("preprocess")
    pre.add_argument("archive", type=Path)
    pre.add_argument("--kind", choices=["ffpp", "celebdf", "dfdc", "dfo"],
                     help="the archive holds this standard dataset as downloaded (its official split is kept)")
    pre.add_argument("--clip-len", type=int, help="frames per clip (32 for the full model)")
    pre.add_argument("--size", type=int, help="aligned face size (224 for the full model)")
    pre.add_argument("--wait", action="store_true")
    train = commands.add_parser("train")
    train.add_argument("--dataset", required=True)
    train.add_argument("--freeze", action="store_true")
    train.add_argument("--epochs", type=int, help="default 10 (or the recipe's)")
    train.add_argument("--recipe", choices=["paper"], help="the paper's training recipe")
    train.add_argument("--default", action="store_true", help="make the trained model the default")
    train.add_argument("--wait", action="store_true")
    status = commands.add_parser("status")
    status.add_argument("job_id")
    download = commands.add_parser("download")
    download.add_argument("job_id")
    download.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    client = Client(args.api, args.token)
    try:
        if args.command == "status":
            print(json.dumps(client.job(args.job_id), indent=2))
            return 0
        if args.command == "download":
            for path in client.download(args.job_id, args.out):
                print(path)
            return 0
        if args.command == "batch":
            made = client.batch(read_batch_file(args.file), args.name, args.model_id, args.webhook_url,
                                reuse=not args.no_reuse)
            made = client.wait_batch(made["id"]) if args.wait else made
            print(json.dumps(made, indent=2))
            return 0
        if args.command == "predict":
            job = client.predict(args.source, args.model_id, webhook_url=args.webhook_url, reuse=not args.no_reuse)
        elif args.command == "preprocess":
            options = {"dataset": args.kind, "clip_len": args.clip_len, "size": args.size}
            job = client.preprocess(args.archive, {k: v for k, v in options.items() if v is not None})
        else:
            given = {"epochs": args.epochs, "recipe": args.recipe}
            job = client.train(dataset_id=args.dataset, freeze=args.freeze, make_default=args.default,
                               **{k: v for k, v in given.items() if v is not None})
        if args.wait:
            job = client.wait(job["id"], progress_line)
        print(json.dumps(job, indent=2))
        return 0 if job["status"] != "failed" else 1
    except (ApiError, requests.RequestException, OSError) as exc:
        print(f"ftcn-client: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
