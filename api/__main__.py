"""``python -m api``: the API's development server on port 8000, as the FTCN reference server was started
(``python -u -m server``). Production runs gunicorn (``gunicorn 'api:create_app()'``)."""

from __future__ import annotations

import argparse

from api import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
