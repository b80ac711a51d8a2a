"""The API process stays small: building the app imports neither torch nor the ML library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_api_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from jobs.settings import Settings\n"
        "from api import create_app\n"
        f"app = create_app(Settings(database_url='sqlite:///{tmp_path}/db.sqlite3', "
        f"storage_url='{(tmp_path / 'store').as_uri()}'))\n"
        "client = app.test_client()\n"
        "assert client.get('/healthcheck').status_code == 200\n"
        "assert client.get('/openapi.json').status_code == 200\n"
        "print(','.join(m for m in ('torch', 'ftcn.models', 'cv2', 'av', 'dlib') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"the API imported {result.stdout.strip()}"
