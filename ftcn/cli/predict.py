"""``ftcn predict VIDEO --weights CKPT``: verdict on stdout; result.json, annotated.mp4, timeline.png in --out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ftcn.checkpoints import load_model
from ftcn.cli.progress import StageBars
from ftcn.faces.backends import make_backend
from ftcn.errors import BadOption
from ftcn.predict.pipeline import PredictOptions, TrackerMode, predict_video
from ftcn.render.annotate import write_annotated_video
from ftcn.render.timeline import write_timeline_plot


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="tell whether a video's faces are forged",
                                 description=__doc__)
    parser.add_argument("video", type=Path)
    parser.add_argument("--weights", type=Path, required=True,
                        help="FTCN checkpoint: ours or the official ftcn_tt.pth (required: random weights never "
                             "give verdicts)")
    parser.add_argument("--out", type=Path, default=Path("ftcn-out"), help="output folder (default ftcn-out)")
    parser.add_argument("--backend", choices=["dlib", "retinaface"], default="dlib")
    parser.add_argument("--retinaface-weights", type=Path, help="mobilenet0.25_Final.pth (retinaface backend)")
    parser.add_argument("--landmark-weights", type=Path, help="MobileNet_GDConv .pth.tar (retinaface backend)")
    parser.add_argument("--detect-size", type=int, help="longer side of frames fed to the detector "
                        "(default: 640 for dlib, upscaling at most 2x; full resolution for retinaface)")
    parser.add_argument("--stride", type=int,
                        help="frames between clip starts; 1 = official (default: half the clip length)")
    parser.add_argument("--detect-every", type=int,
                        help="run the detector every N frames (default: 3 for dlib, 1 for retinaface)")
    parser.add_argument("--tracker", choices=[m.value for m in TrackerMode], default=TrackerMode.FOLLOW_ALL.value)
    parser.add_argument("--batch-size", type=int, help="clips per forward pass (default: suits the device)")
    parser.add_argument("--max-frames", type=int, help="only analyse the first N frames")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--no-video", action="store_true", help="skip annotated.mp4")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BadOption("--device cuda was asked for but no CUDA device is available")
    model, checkpoint = load_model(args.weights, args.device)
    backend = make_backend(args.backend, device=args.device, detect_size=args.detect_size,
                           retinaface_weights=args.retinaface_weights, landmark_weights=args.landmark_weights)
    options = PredictOptions(stride=args.stride, batch_size=args.batch_size, detect_every=args.detect_every,
                             tracker=TrackerMode(args.tracker), max_frames=args.max_frames)
    bars = StageBars()
    try:
        result = predict_video(args.video, model, checkpoint, backend, options, progress=bars)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "result.json").write_text(json.dumps(result, indent=2))
        write_timeline_plot(result, args.out / "timeline.png")
        if not args.no_video:
            write_annotated_video(args.video, result, args.out / "annotated.mp4", options.limits,
                                  on_frame=lambda frame: bars("annotate", frame.index + 1,
                                                                   result["input"]["frames_read"]))
    finally:
        bars.close()
    print(one_line(result))
    return 0


def one_line(result: dict) -> str:
    name = result["input"]["filename"]
    if result["verdict"] == "NO_FACE":
        return f"{name}: NO_FACE (no usable face found in {result['input']['frames_read']} frames)"
    faces = len(result["tracks"])
    return (f"{name}: {result['verdict']} score={result['score']:.3f} threshold={result['threshold']:.3f} "
            f"faces={faces} model={result['model']['name']}")
