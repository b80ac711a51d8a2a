"""Reading ahead: an iterator's items made in a thread of their own, a few at a time, while the caller works.

Why: writing the annotated video decodes (FFmpeg, OpenCV) and encodes (x264), and each releases the GIL; one after
the other they used one core of two while the job's last step ran alone. Decoding ahead on the other core takes
its time off the job's wall time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """``items``, made in a thread up to ``depth`` ahead; its exception is raised here, in order. Closing this
    generator (or an exception in the caller) stops the thread and closes ``items``."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name="ftcn-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
