"""``make demo``: the whole service on one machine, driven over HTTP as a client would.

Starts its own Redis, migrates a SQLite database, starts the API under gunicorn and one Celery worker (local-file
storage), all under one supervisor that stops them on Ctrl-C or at the end. Then: makes a synthetic real/fake
set, submits ``preprocess``, ``train`` (tiny model, all layers) and ``predict`` on the real talking-face sample
and on a held-out synthetic fake, polling with a progress line, and prints verdicts and links.

With ``FTCN_TT_WEIGHTS=/path/ftcn_tt.pth`` the official weights are registered as the default model and training
is skipped. A model with random weights is never used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_stack import BIN, ROOT, admin, start_stack  # noqa: E402

SAMPLE = ROOT / "ftcn" / "synth" / "media" / "carphone_pristine.mp4"
#: The demo's training set: paste-artifact and face-swap fakes, reals from talking faces, a photo and a group photo.
DEMO_METHODS, DEMO_VIDEOS = "jitter,faceswap", 48


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "demo-service")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument("--keep-running", action="store_true", help="leave the service up until Ctrl-C")
    args = parser.parse_args(argv)
    started = time.monotonic()
    official = os.environ.get("FTCN_TT_WEIGHTS")
    from api.client import Client, progress_line

    def register_official(env: dict[str, str]) -> None:
        step(f"registering the official weights {official} as the default model")
        admin(env, "register-model", official, "--name", "ftcn_tt (official)", "--default")

    with ExitStack() as stack:
        def stop(signum, frame):  # Ctrl-C or TERM: unwind the stack, which stops every child
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        step("starting Redis, migrating SQLite, starting the API (gunicorn) and a worker (Celery)")
        service = start_stack(stack, args.home, port=args.port, before_api=register_official if official else None)
        base, token, api, worker = service.base, service.token, service.api, service.worker
        client = Client(base, token)
        print(f"API up at {base} (logs in {service.logs})")
        print(f"API token (admin, train) for this demo: {token}\n  web page: {base}/  (paste the token there)\n"
              f"  client: FTCN_TOKEN={token} {BIN / 'ftcn-client'} --api {base} status JOB_ID")

        work = Path(tempfile.mkdtemp(prefix="ftcn-demo-"))
        stack.callback(shutil.rmtree, work, True)
        step(f"making a synthetic real/fake set ({DEMO_VIDEOS} videos; fakes by {DEMO_METHODS}) and held-out videos")
        subprocess.run([str(BIN / "ftcn"), "synth", str(work / "synth"), "--videos", str(DEMO_VIDEOS), "--seed", "2",
                        "--methods", DEMO_METHODS], check=True)
        subprocess.run([str(BIN / "ftcn"), "synth", str(work / "held_out"), "--videos", "6", "--seed", "99",
                        "--methods", "faceswap"], check=True)
        model_id = None
        if not official:
            archive = work / "dataset.zip"
            with zipfile.ZipFile(archive, "w") as bundle:
                for video in [*sorted((work / "synth").rglob("*.mp4")), work / "synth" / "synth.json"]:
                    bundle.write(video, video.relative_to(work / "synth").as_posix())  # synth.json: for the card
            step("POST /jobs/preprocess (uploaded archive)")
            job = client.wait(client.preprocess(archive, {"val": 0.25})["id"], progress_line)
            if job["status"] != "succeeded":
                raise SystemExit(f"preprocess failed: {job['error']}")
            dataset_id = job["result"]["dataset_id"]
            print(f"  dataset {dataset_id}: {job['result']['clips']} clips from {job['result']['videos']} videos")
            step("POST /jobs/train (tiny model, all layers, 20 epochs on CPU)")
            job = client.wait(client.train(dataset_id=dataset_id, freeze=False, epochs=20, make_default=True,
                                           name="synthetic demo")["id"], progress_line)
            if job["status"] != "succeeded":
                raise SystemExit(f"train failed: {job['error']}")
            model_id = job["result"]["model_id"]
            metrics = job["result"]["metrics"]
            print(f"  model {model_id}: validation AUC clip {metrics['clip']['auc']:.3f}, "
                  f"video {metrics['video']['auc']:.3f}; threshold {job['result']['threshold']:.3f}")
            for name, link in job["links"].items():
                print(f"  {name}: {client.absolute(link)}")
        held_out = work / "held_out"
        unexpected = []
        # What each video may be called: the pan's side faces are in view for under a second, so a face seen too
        # briefly may make it INCONCLUSIVE (ftcn.predict.confidence) instead of REAL; never FAKE.
        for label, video, expected in (
                ("real talking-face sample", SAMPLE, None),
                ("held-out face-swap fake (another identity's face on every frame)",
                 held_out / "fake" / "fake_0000.mp4", ("FAKE",)),
                ("held-out real, a moving face", held_out / "real" / "real_0000.mp4", ("REAL",)),
                ("held-out real, a camera panning across a still group photo", held_out / "real" / "real_0002.mp4",
                 ("REAL", "INCONCLUSIVE"))):
            step(f"POST /jobs/predict: {label}")
            job = client.wait(client.predict(str(video), model_id)["id"], progress_line)
            if job["status"] != "succeeded":
                print(f"  failed: {job['error']}")
                continue
            result = job["result"]
            score = "n/a" if result["score"] is None else f"{result['score']:.3f}"
            coverage = result.get("coverage") or {}
            print(f"  verdict {result['verdict']} (score {score}, threshold {result['threshold']:.3f}, "
                  f"{result['faces']} face(s) judged, {coverage.get('share', 0):.0%} of frames, "
                  f"backend {result.get('backend')})")
            print(f"  {result.get('model_card_line', '')}")
            if expected and result["verdict"] not in expected and not official:
                unexpected.append(f"{label}: {result['verdict']}, expected {' or '.join(expected)}")
            if result.get("no_face_reason"):
                print(f"  why: {result['no_face_reason']}")
            for reason in result.get("inconclusive_reasons") or []:
                print(f"  why: {reason}")
            for name, link in job["links"].items():
                print(f"  {name}: {client.absolute(link)}")
        print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
        if unexpected:
            print("the demo model got these wrong:\n  " + "\n  ".join(unexpected), file=sys.stderr)
            return 1
        if not args.keep_running:
            print(f"the service stops now, so these links stop working (the outputs stay under {args.home}); "
                  "`make demo DEMO_ARGS=--keep-running` leaves it up to open them")
        else:
            print("Ctrl-C stops everything.")
            try:
                while api.poll() is None and worker.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\nstopped")
        raise SystemExit(130)
