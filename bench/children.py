"""Each measured run in a fresh Python process, so one run's memory, threads and caches never touch another's.

Not ``multiprocessing``'s spawn: a spawned child first re-runs the parent's main script (as ``__mp_main__``), and in
a child that imported torch that way OpenVINO ran 3.6-6x slower than the same code in a plain process (measured:
full model, 2 threads, 1.5-2.4 s a clip instead of 0.38-0.64 s, the process using 0.4 of a core; 1 thread, 2.4-2.6
s instead of 0.72-0.81 s, 0.3 of a core). Forking, and importing torch anywhere but the main script, did not do
it; the cause was not found. That is how an earlier bench_model run put OpenVINO at 2.18 s a clip.
Here the child is a new interpreter that imports the target's module by name, as a worker or the CLI would.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent

_CHILD = """
import importlib, pickle, sys
sys.path[:0] = [{bench!r}, {root!r}]
with open(sys.argv[1], "rb") as handle:
    module, name, args = pickle.load(handle)
result = getattr(importlib.import_module(module), name)(*args)
with open(sys.argv[2], "wb") as handle:
    pickle.dump(result, handle)
"""


def in_child(target: Callable[..., Any], *args: Any) -> Any:
    """``target(*args)`` computed in a new interpreter; ``{"error": "exit code N"}`` if it died. ``target`` is a
    module-level function of a module in ``bench/`` (its script, when run as ``__main__``)."""
    module = target.__module__
    if module == "__main__":
        module = Path(sys.modules["__main__"].__file__).stem
    with tempfile.TemporaryDirectory(prefix="ftcn-bench-") as folder:
        arguments, result = Path(folder) / "args.pickle", Path(folder) / "result.pickle"
        arguments.write_bytes(pickle.dumps((module, target.__name__, args)))
        code = _CHILD.format(bench=str(BENCH), root=str(BENCH.parent))
        finished = subprocess.run([sys.executable, "-c", code, str(arguments), str(result)])
        if finished.returncode != 0 or not result.is_file():
            return {"error": f"exit code {finished.returncode}"}
        return pickle.loads(result.read_bytes())
