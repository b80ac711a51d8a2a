"""The ``ftcn`` command line: one subcommand per module, errors printed as one readable line."""

from __future__ import annotations

import argparse
import logging
import sys

from ftcn.cli import data, predict, training
from ftcn.errors import FtcnError

#: Errors a user can act on: printed without a traceback, exit code 2. FileNotFoundError: a path on the command
#: line that is not there.
USER_ERRORS = (FtcnError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftcn", description="FTCN+TT deepfake video detection")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)
    predict.add_parser(commands)
    data.add_parsers(commands)
    training.add_parsers(commands)
    training.add_protocol_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        print(f"ftcn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ftcn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
