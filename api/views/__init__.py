"""HTTP views, one module per resource (``jobs``, ``batches``, ``uploads``, ``meta``) on the one blueprint of
``common``: parse and validate, call ``jobs``, shape the response; errors become problems in ``api.problems``.
Nothing heavy here (no ML stack: the import contract test)."""

from __future__ import annotations

from api.views import batches, jobs, meta, uploads  # noqa: F401 - each registers its routes on the blueprint
from api.views.common import bp

__all__ = ["bp"]
