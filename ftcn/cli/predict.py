"""``ftcn predict VIDEO --weights CKPT``: verdict on stdout; result.json, annotated.mp4, timeline.png in --out.

Several videos, a folder or a CSV of ``path,label[,method]``: the model and detector load once, each video's
results go to ``--out/<video>/``, ``summary.csv`` lists them all, a rerun skips videos already scored, and with
labels the video-level AUC, accuracy and false-positive rate are printed (``ftcn.predict.batch``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ftcn.cards import card_line
from ftcn.checkpoints import load_model
from ftcn.cli.progress import StageBars
from ftcn.errors import BadOption
from ftcn.faces.names import BACKENDS, DEFAULT_BACKEND
from ftcn.faces.backends import make_backend
from ftcn.precision import Precision
from ftcn.predict.pipeline import PredictOptions, TrackerMode, predict_video
from ftcn.predict.summary import summary
from ftcn.render.artifacts import write_artifacts
from ftcn.runtime import Runtime
from ftcn.video.decode import probe


def build_parser_defaults(**given) -> argparse.Namespace:
    """``ftcn predict``'s options at their defaults, with ``given`` set (other commands reuse its pipeline)."""
    parser = argparse.ArgumentParser()
    _arguments(parser)
    defaults = parser.parse_args(["-", "--weights", "-"])
    return argparse.Namespace(**{**vars(defaults), **given})


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="tell whether a video's faces are forged",
                                 description=__doc__)
    _arguments(parser)
    parser.set_defaults(run=run)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, nargs="+",
                        help="a video; or several, a folder (real/ and fake/ give labels) or a CSV of "
                             "path,label[,method]")
    parser.add_argument("--weights", type=Path, required=True,
                        help="FTCN checkpoint: ours or the official ftcn_tt.pth (required: random weights never "
                             "give verdicts)")
    parser.add_argument("--out", type=Path, default=Path("ftcn-out"), help="output folder (default ftcn-out)")
    pipeline_arguments(parser)
    parser.add_argument("--no-video", action="store_true", help="skip annotated.mp4")


def pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """How videos are analysed: the options every command that scores videos shares."""
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    parser.add_argument("--retinaface-weights", type=Path, help="mobilenet0.25_Final.pth (retinaface backend)")
    parser.add_argument("--landmark-weights", type=Path, help="MobileNet_GDConv .pth.tar (retinaface backend)")
    parser.add_argument("--detect-size", type=int, help="longer side of frames fed to the detector "
                        "(default: dlib scans at the scale --min-face-px needs; retinaface at full resolution)")
    parser.add_argument("--min-face-px", type=int, help="smallest face (px tall) dlib must find (default 40)")
    parser.add_argument("--stride", type=int,
                        help="frames between clip starts on every track; 1 = official (default: the adaptive pass, "
                             "a clip length, and half of it on tracks whose verdict is in doubt)")
    parser.add_argument("--detect-every", type=int,
                        help="run a full detection every N frames and nowhere else (default: dlib scans where "
                             "following needs it; retinaface detects on every frame)")
    parser.add_argument("--tracker", choices=[m.value for m in TrackerMode], default=TrackerMode.FOLLOW_ALL.value)
    parser.add_argument("--batch-size", type=int, help="clips per forward pass (default: suits the device)")
    parser.add_argument("--max-frames", type=int, help="only analyse the first N frames")
    parser.add_argument("--runtime", choices=[r.value for r in Runtime], default=Runtime.AUTO.value,
                        help="where the model runs: auto = OpenVINO in fp32 on a CPU (fastest there, same numbers as "
                             "torch fp32; ONNX Runtime where OpenVINO is missing), torch on a GPU")
    parser.add_argument("--precision", choices=[p.value for p in Precision], default=Precision.AUTO.value,
                        help="number format: auto = fp32, the official-equivalent arithmetic; bf16 = autocast on a "
                             "device that computes it natively (faster on GPUs; moved trained models' probabilities by up to 0.011)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")


def run(args: argparse.Namespace) -> int:
    if len(args.video) == 1 and args.video[0].is_file() and args.video[0].suffix.lower() not in (".csv", ".txt"):
        return _run_one(args, args.video[0])
    report = score_videos(args, args.video, args.out, show=True)
    if report is not None:
        print(json.dumps(report, indent=2))
    return 0


def _options(args: argparse.Namespace) -> PredictOptions:
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BadOption("--device cuda was asked for but no CUDA device is available")
    return PredictOptions(stride=args.stride, batch_size=args.batch_size, detect_every=args.detect_every,
                          tracker=TrackerMode(args.tracker), max_frames=args.max_frames,
                          precision=args.precision, runtime=args.runtime)


def _loaded(args: argparse.Namespace) -> tuple:
    model, checkpoint = load_model(args.weights, args.device)
    backend = make_backend(args.backend, device=args.device, detect_size=args.detect_size,
                           retinaface_weights=args.retinaface_weights, landmark_weights=args.landmark_weights,
                           min_face_px=args.min_face_px)
    return model, checkpoint, backend


def _write(args, video: Path, result: dict, out: Path, options: PredictOptions, bars, with_result: bool = True
           ) -> None:
    """result.json, timeline.png, the face pictures and, unless --no-video, annotated.mp4 in ``out``."""
    frames = result["input"]["frames_read"]
    write_artifacts(video, result, out, options.limits, annotated=not args.no_video, with_result=with_result,
                    on_frame=lambda frame: bars("annotate", frame.index + 1, frames))


def _run_one(args: argparse.Namespace, video: Path) -> int:
    options = _options(args)
    probe(video, options.limits)  # a file that is not a video is refused before any model loads
    model, checkpoint, backend = _loaded(args)
    bars = StageBars()
    try:
        result = predict_video(video, model, checkpoint, backend, options, progress=bars)
        _write(args, video, result, args.out, options, bars)
    finally:
        bars.close()
    print(one_line(result))
    return 0


def score_videos(args: argparse.Namespace, sources: list[Path], out: Path, show: bool) -> dict | None:
    """Score many videos with one loaded model (resumable, failures recorded); the labelled report or None."""
    from ftcn.predict.batch import items_from

    return report_rows(score_items(args, items_from(sources), out, show), out, show)


def score_items(args: argparse.Namespace, items: list, out: Path, show: bool) -> list[dict]:
    """Every item's summary row; results in ``out/<item>/``, videos already scored there are not scored again."""
    from ftcn.predict.batch import run_batch

    options = _options(args)
    model, checkpoint, backend = _loaded(args)
    bars = StageBars()

    def score(item, folder: Path) -> dict:
        probe(item.path, options.limits)
        result = predict_video(item.path, model, checkpoint, backend, options)
        result["input"]["filename"] = item.name
        _write(args, item.path, result, folder, options, bars, with_result=False)  # run_batch writes it last
        if show:
            bars.close()
            print(one_line(result))
        return result

    try:
        rows, scored = run_batch(items, out, score, progress=bars)
    finally:
        bars.close()
    failed = sum(bool(row["error"]) for row in rows)
    print(f"{len(rows)} videos: {scored} scored now, {len(rows) - scored} already done, {failed} failed; "
          f"summary in {out / 'summary.csv'}")
    return rows


def report_rows(rows: list[dict], out: Path, show: bool) -> dict | None:
    """report.json (video AUC, EER, AP, accuracy, false positives; per method) of labelled rows, printed."""
    from ftcn.predict.batch import video_report

    report = video_report(rows)
    if report is not None:
        (out / "report.json").write_text(json.dumps(report, indent=2))
        overall = report["overall"]
        threshold = next((r["threshold"] for r in rows if r.get("threshold") not in (None, "")), None)
        print(f"video AUC {_show(overall['auc'])}, EER {_show(overall['eer'])}, AP {_show(overall['ap'])}, "
              f"accuracy {_show(overall['accuracy'])}, false positives on real videos "
              f"{_show(overall['false_positive_rate'])} (threshold {_show(threshold, 4)})")
    return report


def _show(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def one_line(result: dict) -> str:
    """The verdict, and beneath it the model card's line (what the model was trained on, what it is worth)."""
    name = result["input"]["filename"]
    card = "\n  " + card_line(result["model"]["name"], result["model"].get("card"))
    if result["verdict"] == "NO_FACE":
        return f"{name}: NO_FACE ({result['no_face_reason']})" + card
    judged = summary(result)["faces"]
    if result["verdict"] == "INCONCLUSIVE":
        card = "\n  " + "\n  ".join(result["inconclusive_reasons"]) + card
    score = "-" if result["score"] is None else f"{result['score']:.3f}"
    return (f"{name}: {result['verdict']} score={score} threshold={result['threshold']:.3f} "
            f"faces={judged} coverage={result['coverage']['share']:.0%} model={result['model']['name']}" + card)
