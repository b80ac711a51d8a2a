"""The annotated video: at most ANNOTATED_MAX_PIXELS a frame, boxes where the faces are, thumbnails from the
smaller frames matching the full-size crops."""

from __future__ import annotations

import av
import numpy as np

from ftcn.render.annotate import ANNOTATED_MAX_PIXELS, STRIP_HEIGHT, annotated_scale, write_annotated_video
from ftcn.render.thumbnails import FaceThumbnails, face_crop
from ftcn.video.decode import iter_frames
from ftcn.video.encode import write_video
from tests.media import face_photo


def _video_and_result(tmp_path, width=1280, height=720, frames=6):
    photo = face_photo()
    canvas = np.full((height, width, 3), 60, dtype=np.uint8)
    if width >= 856:
        canvas[200:456, 600:856] = photo[0:256, 96:352]
    path = write_video(tmp_path / "big.mp4", [canvas] * frames, fps=25)
    box = [630.0, 230.0, 826.0, 440.0]
    result = {
        "input": {"width": width, "height": height, "fps": 25.0, "frames_read": frames},
        "threshold": 0.5,
        "tracks": [{"id": 0, "frames": list(range(frames)), "boxes": [box] * frames,
                    "timeline": [0.9] * frames, "score": 0.9}],
    }
    return path, result, box


def test_a_large_video_is_annotated_smaller_with_boxes_in_place(tmp_path):
    path, result, box = _video_and_result(tmp_path)
    thumbnails = FaceThumbnails(result)
    out = write_annotated_video(path, result, tmp_path / "annotated.mp4", on_frame=thumbnails.see)
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    scale = annotated_scale(1280, 720)
    height, width = frames[0].shape[:2]
    assert len(frames) == 6 and scale < 1
    assert (height - STRIP_HEIGHT) * width <= ANNOTATED_MAX_PIXELS
    assert abs(width / (height - STRIP_HEIGHT) - 1280 / 720) < 0.01
    # the box's left edge is drawn in the fake colour (red) where the scaled box lies, not where the full one does
    x1, y_mid = int(round(box[0] * scale)), int(round((box[1] + box[3]) / 2 * scale))
    edge = frames[3][y_mid, x1].astype(int)
    assert edge[0] > 180 and edge[1] < 120, edge
    # the thumbnail cut from the smaller frame looks like the one cut from the full frame
    full = face_crop(next(iter_frames(path)).rgb, box)
    assert np.abs(thumbnails.crops[0].astype(int) - full.astype(int)).mean() < 8


def test_a_small_video_keeps_its_size(tmp_path):
    path, result, _ = _video_and_result(tmp_path, width=320, height=240)
    result["tracks"][0]["boxes"] = [[100.0, 60.0, 200.0, 180.0]] * 6
    out = write_annotated_video(path, result, tmp_path / "annotated.mp4")
    with av.open(str(out)) as container:
        frame = next(container.decode(container.streams.video[0]))
    assert (frame.width, frame.height) == (320, 240 + STRIP_HEIGHT)
