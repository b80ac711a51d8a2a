"""The face backends' names, in a module of their own: the service's API and job records name them too, and the
API does not import the backends (they need numpy, dlib and torch)."""

from __future__ import annotations

MTCNN = "mtcnn"
DLIB = "dlib"
RETINAFACE = "retinaface"
#: Every backend; the first is the default wherever the official RetinaFace weights are not given.
BACKENDS = (MTCNN, DLIB, RETINAFACE)
DEFAULT_BACKEND = BACKENDS[0]
