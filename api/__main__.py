"""``python -m api``: the API's development server on port 8000 (or ``SERVER_PORT``, as the FTCN reference server's
container is started), as that server was started (``python -u -m server``). Production runs gunicorn
(``gunicorn 'api:create_app()'``; the API image binds ``SERVER_PORT`` too)."""

from __future__ import annotations

import argparse
import os

from api import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVER_PORT") or 8000),
                        help="default: SERVER_PORT, else 8000")
    args = parser.parse_args(argv)
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
