"""JSON from clients, bounded: size (413 before reading), nesting depth, duplicate keys, NaN and Infinity (400).

Python's ``json`` recurses once per nesting level, so 100,000 brackets raise ``RecursionError`` (a 500 if left
alone); it accepts NaN, Infinity, 1e999 (as infinity) and duplicate keys (the last one silently wins), none of which any of our
requests needs. Every JSON a client sends (request bodies and the multipart ``options`` field) goes through
:func:`parse_json`, so each rule lives here once.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from typing import Any

from flask import Request

from api.problems import Problem

#: Deepest nesting any of our request schemas uses is 3; 32 leaves room and bounds the work.
MAX_JSON_DEPTH = 32


class DigestingFile(tempfile.SpooledTemporaryFile):
    """Where Werkzeug writes an uploaded file as its bytes arrive (in memory up to 512 KB, then on disk): the
    SHA-256 and the size are computed on the way, so the API never reads an upload back to digest it."""

    def __init__(self) -> None:
        super().__init__(max_size=512 * 1024)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return super().write(data)


class DigestingRequest(Request):
    """The API's request class: uploaded files go to a :class:`DigestingFile`."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return DigestingFile()


class _Refused(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"the key {key[:64]!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:32]} is too large")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(raw: bytes | str, what: str = "the request body") -> Any:
    """Parsed JSON, or a 400 problem that says what is wrong with it."""
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                           parse_float=_finite)
    except RecursionError:
        value = None
        deep = True
    except _Refused as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", f"{what}: {exc}") from None
    except ValueError:  # includes invalid UTF-8 and integers too long to convert
        raise Problem(400, "malformed-json", "Malformed JSON", f"{what} is not valid JSON") from None
    else:
        deep = _depth(value) > MAX_JSON_DEPTH
    if deep:
        raise Problem(400, "too-deeply-nested", "JSON nested too deeply",
                      f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def read_json_body(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, refused with 413 when larger than ``max_bytes`` (before reading when the client
    declared its length; after ``max_bytes + 1`` bytes when it did not)."""
    too_large = Problem(413, "too-large", "Request too large",
                        f"a JSON body may be at most {max_bytes // 1024} KB; send files as uploads")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large
    return parse_json(raw or b"")
