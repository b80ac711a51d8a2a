"""``ftcn-admin``: management commands (run where the worker runs: registering a model reads the checkpoint)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.db import make_engine, session_scope, upgrade
from jobs.models import Model, new_id
from jobs.settings import Settings
from jobs.storage import open_storage


def register_model(settings: Settings, checkpoint_path: Path, name: str, default: bool) -> str:
    """Validate the checkpoint (ours or the official ftcn_tt.pth), store it, and add a Model row."""
    from sqlalchemy.orm import sessionmaker

    from ftcn.checkpoints import load_checkpoint, model_from_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    model_from_checkpoint(checkpoint)  # strict load: refuse weights that do not fit before registering them
    model_id = new_id()
    key = f"models/{model_id}/model.pt"
    open_storage(settings).put_file(key, checkpoint_path)
    sessions = sessionmaker(make_engine(settings.database_url))
    with session_scope(sessions) as session:
        if default:
            session.query(Model).update({Model.is_default: False})
        session.add(Model(id=model_id, name=name, threshold=checkpoint.threshold, storage_key=key,
                          config=checkpoint.config.to_dict(), metrics=checkpoint.metadata.get("best_val"),
                          is_default=default))
    return model_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftcn-admin")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="alembic upgrade head")
    register = commands.add_parser("register-model", help="register a checkpoint as a model")
    register.add_argument("checkpoint", type=Path)
    register.add_argument("--name", required=True)
    register.add_argument("--default", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        upgrade(settings.database_url)
        if args.command == "register-model":
            print(register_model(settings, args.checkpoint, args.name, args.default))
    except (ValueError, FileNotFoundError) as exc:
        print(f"ftcn-admin: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
