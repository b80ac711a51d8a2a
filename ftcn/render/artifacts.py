"""Everything a prediction leaves for people, written in one place for the CLI and the worker alike: the result
document, the annotated video, the timeline plot and one face picture per track.

The face pictures are cropped from the frames the annotation pass decodes anyway, so no third decode is made;
without the annotated video (``ftcn predict --no-video``) they are decoded on their own, up to the last one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcn.render.annotate import write_annotated_video
from ftcn.render.thumbnails import FaceThumbnails, write_face_thumbnails
from ftcn.render.timeline import write_timeline_plot
from ftcn.video.decode import Frame, VideoLimits

#: Each artifact's content type, by file suffix (what a store serves it as).
CONTENT_TYPES = {".json": "application/json", ".mp4": "video/mp4", ".png": "image/png", ".jpg": "image/jpeg"}


@dataclass(frozen=True)
class Artifacts:
    """What was written: name -> file (``result``, ``annotated_video``, ``timeline``, ``face_<track id>``)."""

    files: dict[str, Path]
    encode_s: float  # seconds spent on the annotated video (0 without it)

    def relative(self, folder: Path) -> dict[str, str]:
        """Each file's path under ``folder``, in POSIX form (the tail of its storage key)."""
        return {name: path.relative_to(folder).as_posix() for name, path in self.files.items()}


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix, "application/octet-stream")


def write_artifacts(video: Path, result: dict[str, Any], out: Path, limits: VideoLimits | None = None, *,
                    annotated: bool = True, with_result: bool = True,
                    on_frame: Callable[[Frame], None] | None = None) -> Artifacts:
    """Write the artifacts of ``result`` (the analysis of ``video``) into ``out``. ``with_result=False`` leaves
    ``result.json`` to a caller that writes it its own way (a batch writes it last, as its mark of completion)."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    encode_s = 0.0
    if annotated:
        faces = FaceThumbnails(result)

        def seen(frame: Frame) -> None:
            faces.see(frame)
            if on_frame:
                on_frame(frame)

        started = time.perf_counter()
        files["annotated_video"] = write_annotated_video(video, result, out / "annotated.mp4", limits, on_frame=seen)
        encode_s = time.perf_counter() - started
        thumbnails = faces.write(out / "faces")
    else:
        thumbnails = write_face_thumbnails(video, result, out / "faces", limits)
    files["timeline"] = write_timeline_plot(result, out / "timeline.png")
    for track_id, path in sorted(thumbnails.items()):
        files[f"face_{track_id}"] = path
    if with_result:
        files["result"] = out / "result.json"
        files["result"].write_text(json.dumps(result, indent=2))
    return Artifacts(files, encode_s)
