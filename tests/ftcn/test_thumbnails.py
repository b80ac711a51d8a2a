"""Face thumbnails: one crop per track, from the track's middle frame, decoded once."""

from __future__ import annotations

from pathlib import Path

import cv2

from ftcn.render.thumbnails import THUMB_SIZE, face_crop, write_face_thumbnails
from ftcn.video.decode import iter_frames
from tests.media import TALKING_FACE


def test_one_thumbnail_per_track(tmp_path: Path) -> None:
    box = [60.0, 30.0, 110.0, 90.0]
    result = {"tracks": [{"id": 0, "frames": list(range(0, 40)), "boxes": [box] * 40},
                         {"id": 3, "frames": list(range(50, 60)), "boxes": [[0.0, 0.0, 20.0, 20.0]] * 10}]}
    written = write_face_thumbnails(TALKING_FACE, result, tmp_path)
    assert sorted(written) == [0, 3]
    image = cv2.imread(str(written[0]))
    assert image.shape == (THUMB_SIZE, THUMB_SIZE, 3)
    frame = next(f.rgb for f in iter_frames(TALKING_FACE, max_frames=21) if f.index == 20)
    expected = cv2.cvtColor(face_crop(frame, box), cv2.COLOR_RGB2BGR).astype(int)
    assert abs(image.astype(int) - expected).mean() < 6  # the middle frame's crop (JPEG-compressed)
    assert write_face_thumbnails(TALKING_FACE, {"tracks": []}, tmp_path / "none") == {}
