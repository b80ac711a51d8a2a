"""The errors ``ftcn`` raises for problems a user can act on, in one family.

Callers translate them at their edge, each in one place: the CLI prints one line and exits 2
(``ftcn.cli``), the worker maps each class to a job error code (``worker.failures``). Anything else that escapes
``ftcn`` is a bug, reported as an internal error with the details in the log.
"""

from __future__ import annotations


class FtcnError(Exception):
    """Base of every error whose message is meant for the user."""


class InvalidVideo(FtcnError, ValueError):
    """The file is not a decodable video (corrupt, truncated, not a video at all, no video stream)."""


class VideoTooLarge(InvalidVideo):
    """The video exceeds a configured bound (duration, frame count or frame size)."""


class NotAVideo(InvalidVideo):
    """A still image, or a video of a single frame: FTCN judges motion over time, so it has nothing to judge."""


class InvalidSource(FtcnError, ValueError):
    """A dataset source cannot be used (layout, labels, missing files)."""


class DatasetError(FtcnError, ValueError):
    """A preprocessed dataset cannot be used for what was asked (no clips, one class, no split, missing files)."""


class CheckpointError(FtcnError, ValueError):
    """A weight file that cannot be used, with the reason in the message."""


class BackendUnavailable(FtcnError, RuntimeError):
    """The chosen face backend cannot run here (unknown name, missing package or weight file)."""


class BadOption(FtcnError, ValueError):
    """An option value outside what the function accepts (a stride of 0, a CUDA device that is not there)."""
