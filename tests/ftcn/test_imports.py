"""ftcn is the ML library: importing it must not pull in the web, queue, database or S3 stacks."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["ftcn", "ftcn.models", "ftcn.checkpoints", "ftcn.predict.pipeline", "ftcn.cli", "ftcn.training.train",
           "ftcn.training.evaluate", "ftcn.datasets.preprocess", "ftcn.synth.generate"]
FORBIDDEN = ["flask", "celery", "sqlalchemy", "boto3", "botocore", "redis"]


def test_ftcn_imports_without_service_dependencies() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"ftcn imported {result.stdout.strip()}"
