"""``python -m ftcn`` is the ``ftcn`` command (torchrun starts distributed training this way: ``-m ftcn train``).

Under torchrun a rank leaves with ``os._exit`` once its output is flushed: the process group is destroyed by then,
but gloo's threads can still abort the interpreter's own teardown ("terminate called without an active
exception", pytorch/pytorch#179291), which would turn a finished run into a failed one.
"""

import os
import sys

from ftcn.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
