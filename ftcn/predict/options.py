"""How a video is analysed (:class:`PredictOptions`), shared by the pipeline, its passes, segments and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from ftcn.errors import BadOption
from ftcn.faces.backends import FaceBackend
from ftcn.faces.tracking import TrackerConfig
from ftcn.models import FTCN
from ftcn.precision import Precision
from ftcn.predict.confidence import QualityRules
from ftcn.predict.judging import JudgingRules
from ftcn.runtime import Runtime
from ftcn.video.decode import VideoLimits

#: Clips at least this big (frames x pixels; the official 32 x 224 x 224 is) run at batch 1 on a CPU.
LARGE_CLIP_VOLUME = 32 * 224 * 224

#: progress(stage, done, total) with stage one of "faces", "clips".
Progress = Callable[[str, int, int | None], None]


class TrackerMode(str, Enum):
    FOLLOW_ALL = "follow_all"
    OFFICIAL = "official"


@dataclass(frozen=True)
class PredictOptions:
    """How a video is analysed. ``stride=1, detect_every=1, tracker=official`` is the official behaviour.

    Defaults (None) are the fast mode measured by bench/bench_predict.py and guarded by bench/bench_one_pass.py:
    the adaptive pass (``ftcn.predict.adaptive``: one clip per frame, the half-clip stride's other clips only for
    tracks whose verdict is in doubt), faces scanned where following needs it (``ftcn.faces.scan``), and
    a batch size that suits the device (on CPU the full-size model runs fastest per clip at batch 1: 0.29 clips/s
    against 0.20 at batch 4, bench/bench_model.py; smaller models prefer 4). A ``stride`` given is a fixed stride
    (1: the official clip at every frame), unless ``adaptive`` is set too.
    """

    stride: int | None = None
    #: None: adaptive when no stride is given; True: ``stride`` (default: a clip length) is the first pass and
    #: borderline tracks get the clips half of it off; False: every track at ``stride`` (default: half a clip).
    adaptive: bool | None = None
    batch_size: int | None = None
    detect_every: int | None = None
    tracker: TrackerMode = TrackerMode.FOLLOW_ALL
    tracker_config: TrackerConfig | None = None  # None: the backend's, measured for its scores
    max_frames: int | None = None
    limits: VideoLimits = field(default_factory=VideoLimits)
    judging: JudgingRules = field(default_factory=JudgingRules)
    #: When a judged face is seen too badly for its verdict to count (ftcn.predict.confidence).
    quality: QualityRules = field(default_factory=QualityRules)
    #: Before answering NO_FACE, a second detector looks at a few frames (ftcn.predict.second_look).
    second_look: bool = True
    #: auto, fp32 or bf16 (ftcn.precision), and where the model runs: auto, torch or onnxruntime (ftcn.runtime).
    precision: str = Precision.AUTO.value
    runtime: str = Runtime.AUTO.value
    #: The model card shown with the verdict (ftcn.cards): a registered model's; None derives it from the checkpoint.
    card: dict[str, Any] | None = None
    #: One decode with the model classifying while faces are found (ftcn.predict.stream); False decodes twice,
    #: faces first. The official tracker always takes two passes (it links with the whole video in view).
    streaming: bool = True

    def __post_init__(self) -> None:
        for name in ("stride", "batch_size", "detect_every", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadOption(f"{name} must be at least 1, got {value}")

    def resolved(self, model: FTCN, backend: FaceBackend) -> "PredictOptions":
        """The options with defaults filled in for this model, its device and the backend."""
        on_cpu = next(model.parameters()).device.type == "cpu"
        large = model.cfg.clip_len * model.cfg.image_size**2 >= LARGE_CLIP_VOLUME
        adaptive = self.stride is None if self.adaptive is None else self.adaptive
        return replace(
            self,
            adaptive=adaptive,
            stride=self.stride or (model.cfg.clip_len if adaptive else max(1, model.cfg.clip_len // 2)),
            batch_size=self.batch_size or (1 if on_cpu and large else 4 if on_cpu else 8),
            tracker_config=self.tracker_config or backend.tracker_config,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "adaptive": self.adaptive,
            "batch_size": self.batch_size,
            "detect_every": self.detect_every,
            "tracker": self.tracker.value,
            "max_frames": self.max_frames,
            "precision": self.precision,
            "runtime": self.runtime,
            "streaming": self.streaming and self.tracker is TrackerMode.FOLLOW_ALL,
        }
