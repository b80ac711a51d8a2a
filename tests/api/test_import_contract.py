"""The import contract: api/ and jobs/ import no ML stack (torch, numpy, the model or face code), neither when they
are imported nor on any route; the API image relies on it (Dockerfile.api installs none of it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.media import TALKING_FACE
from tests.servers import redis_server

ROOT = Path(__file__).resolve().parents[2]


def test_api_and_jobs_never_import_the_ml_stack(tmp_path: Path) -> None:
    with redis_server() as redis_url:
        done = subprocess.run([sys.executable, "-m", "tests.api.contract_driver", str(tmp_path), redis_url,
                               str(TALKING_FACE)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["refused"] == [], f"api/jobs tried to import {outcome['refused']}"
    assert outcome["loaded"] == []
    assert outcome["failures"] == [], outcome["failures"]
    assert len(outcome["driven"]) >= 30, outcome["driven"]  # every route of the app, not a few
    assert outcome["report_auc"] == 1.0  # the labelled batch's report was computed, without numpy


def test_the_blocker_catches_an_import(tmp_path: Path) -> None:
    """The contract can fail: a module that imports numpy is refused under the same blocker."""
    code = ("import sys\nsys.path.insert(0, '.')\nfrom tests.api.contract_driver import Blocker, refused\n"
            "sys.meta_path.insert(0, Blocker())\n"
            "try:\n    import ftcn.predict.result\nexcept ModuleNotFoundError:\n    pass\nprint(refused)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "numpy" in done.stdout, done.stderr[-2000:]
