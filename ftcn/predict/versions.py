"""Versions of what a prediction says, in a module of their own: the API reads them (the reuse key holds the
analysis version) and the API image has no numpy, which :mod:`ftcn.predict.result` needs."""

from __future__ import annotations

#: 1.4: INCONCLUSIVE may come without a score (a face was seen, by the pipeline or the second look, but none judged).
RESULT_SCHEMA_VERSION = "1.4"
#: Raised whenever the default analysis changes what a result says for the same video, model and options (2: the
#: adaptive pass and faces scanned where following needs them; 3: MTCNN the default face detector, and a face seen
#: but not judged is INCONCLUSIVE); a stored result of another version is not reused.
ANALYSIS_VERSION = 3
