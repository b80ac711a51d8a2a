"""Versions of what a prediction says, in a module of their own: the API reads them (the reuse key holds the
analysis version) and the API image has no numpy, which :mod:`ftcn.predict.result` needs."""

from __future__ import annotations

RESULT_SCHEMA_VERSION = "1.3"
#: Raised whenever the default analysis changes what a result says for the same video, model and options (2: the
#: adaptive pass and faces scanned where following needs them); a stored result of another version is not reused.
ANALYSIS_VERSION = 2
