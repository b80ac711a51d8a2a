"""``python -m ftcn`` is the ``ftcn`` command (torchrun starts distributed training this way: ``-m ftcn train``)."""

from ftcn.cli import main

raise SystemExit(main())
