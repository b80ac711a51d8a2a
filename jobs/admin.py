"""``ftcn-admin``: management commands (run where the worker runs: registering a model reads the checkpoint).

``migrate``, ``register-model``, ``register-detector``, ``token create|list|revoke`` and ``reconcile`` (one sweep
for lost jobs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from jobs.auth import create_token, revoke_token, token_view
from jobs.db import make_engine, session_scope, upgrade
from jobs.detectors import RETINAFACE, RETINAFACE_FILES
from jobs.keys import detector_key, detector_prefix, model_key
from jobs.models import Detector, Model, Token, new_id
from jobs.service import clear_default
from jobs.settings import Settings
from jobs.storage import open_storage


def _sessions(settings: Settings) -> sessionmaker:
    return sessionmaker(make_engine(settings.database_url), expire_on_commit=False)


def register_model(settings: Settings, checkpoint_path: Path, name: str, default: bool,
                   owner: str | None = None, check_on: str | None = None, **card: Any) -> str:
    """Validate the checkpoint (ours or the official ftcn_tt.pth), store it, and add a Model row (shared with every
    token when ``owner`` is None; the default among shared models with ``default``). Its model card is the one the
    checkpoint implies, completed by ``card`` (training_data, validation, intended_use, demonstration).

    ``check_on``: a preprocessed, split dataset of labelled videos; bf16 and int8 are judged on its validation
    videos first (``ftcn.precision_check``) and the checkpoint registered with what passed. Without it, the
    checkpoint's own record stands (``ftcn train`` makes one), and a file with none runs in fp32."""
    from ftcn.cards import card_from_checkpoint, complete
    from ftcn.checkpoints import load_checkpoint, model_from_checkpoint
    from ftcn.digests import file_sha256

    checkpoint = load_checkpoint(checkpoint_path)
    model_from_checkpoint(checkpoint)  # strict load: refuse weights that do not fit before registering them
    model_id = new_id()
    key = model_key(model_id)
    with tempfile.TemporaryDirectory(prefix="ftcn-checked-") as folder:
        if check_on is not None:
            from ftcn.datasets.storage import open_store
            from ftcn.precision_check import check_checkpoint, save_checked, table_lines

            checkpoint, table = check_checkpoint(checkpoint, open_store(check_on, settings.s3_endpoint_url))
            print("\n".join(table_lines(table)), file=sys.stderr)
            checkpoint_path = save_checked(Path(folder) / "model.pt", checkpoint)
        open_storage(settings).put_file(key, checkpoint_path)
        digest = file_sha256(checkpoint_path)
    with session_scope(_sessions(settings)) as session:
        if default:
            clear_default(session, owner)
        session.add(Model(id=model_id, name=name, threshold=checkpoint.threshold, storage_key=key,
                          config=checkpoint.config.to_dict(), metrics=checkpoint.metadata.get("best_val"),
                          is_default=default, owner=owner, sha256=digest,
                          card=complete(card_from_checkpoint(checkpoint), **card)))
    return model_id


def register_detector(settings: Settings, retinaface_weights: Path, landmark_weights: Path, name: str,
                      default: bool = False) -> str:
    """Validate the official RetinaFace and landmark files (strict loads), store them, and add a Detector row."""
    from ftcn.checkpoints import load_landmark_net, load_retinaface
    from ftcn.digests import file_sha256

    load_retinaface(retinaface_weights)
    load_landmark_net(landmark_weights)
    detector_id = new_id()
    storage = open_storage(settings)
    files = {}
    for role, path in (("retinaface", retinaface_weights), ("landmarks", landmark_weights)):
        key = detector_key(detector_id, RETINAFACE_FILES[role])
        storage.put_file(key, path)
        files[role] = {"key": key, "sha256": file_sha256(path),
                       "bytes": path.stat().st_size}
    with session_scope(_sessions(settings)) as session:
        if default:
            for row in session.scalars(select(Detector).where(Detector.is_default)):
                row.is_default = False
        session.add(Detector(id=detector_id, name=name, backend=RETINAFACE, storage_prefix=detector_prefix(detector_id),
                             files=files, is_default=default))
    return detector_id


def make_token(settings: Settings, owner: str, name: str = "", admin: bool = False, train: bool = False) -> str:
    """Create a token and return its secret (the only time it is visible)."""
    return make_token_secrets(settings, owner, name, admin, train)[0]


def make_token_secrets(settings: Settings, owner: str, name: str = "", admin: bool = False,
                       train: bool = False) -> tuple[str, str]:
    """Create a token; return its secret and its webhook signing secret (the only time either is visible)."""
    with session_scope(_sessions(settings)) as session:
        token, secret = create_token(session, owner, name, admin=admin, can_train=train)
        return secret, token.webhook_secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftcn-admin")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="alembic upgrade head")
    register = commands.add_parser("register-model", help="register a checkpoint as a model")
    register.add_argument("checkpoint", type=Path)
    register.add_argument("--name", required=True)
    register.add_argument("--default", action="store_true")
    register.add_argument("--owner", help="only this owner's tokens may use it (default: shared with all)")
    register.add_argument("--training-data", help="model card: what it was trained on (default: what the checkpoint "
                                                  "records)")
    register.add_argument("--validation", help="model card: its validation figures, in words")
    register.add_argument("--intended-use", help="model card: what its verdicts are for")
    register.add_argument("--demonstration", action=argparse.BooleanOptionalAction, default=None,
                          help="model card: a demonstration model, whose verdicts on real videos mean little")
    register.add_argument("--check-on", metavar="DATASET",
                          help="judge bf16 and int8 against fp32 on this preprocessed dataset's validation videos "
                               "and register the checkpoint with the precisions that pass")
    detector = commands.add_parser("register-detector", help="register the official RetinaFace + landmark weights")
    detector.add_argument("--retinaface", type=Path, required=True, help="mobilenet0.25_Final.pth")
    detector.add_argument("--landmarks", type=Path, required=True, help="MobileNet_GDConv .pth.tar")
    detector.add_argument("--name", required=True)
    detector.add_argument("--default", action="store_true", help="the RetinaFace weights jobs use by default")
    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token; prints its secret once")
    create.add_argument("--owner", required=True, help="who the token's jobs, datasets and models belong to")
    create.add_argument("--name", default="")
    create.add_argument("--admin", action="store_true", help="may see every owner's jobs, datasets and models")
    create.add_argument("--train", action="store_true", help="may submit preprocess and train jobs")
    token.add_parser("list", help="list tokens (never their secrets)")
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")
    commands.add_parser("reconcile", help="one sweep: re-enqueue jobs lost by the broker, fail abandoned ones")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        upgrade(settings.database_url)
        if args.command == "register-model":
            print(register_model(settings, args.checkpoint, args.name, args.default, args.owner, args.check_on,
                                 training_data=args.training_data, validation=args.validation,
                                 intended_use=args.intended_use, demonstration=args.demonstration))
        elif args.command == "register-detector":
            print(register_detector(settings, args.retinaface, args.landmarks, args.name, args.default))
        elif args.command == "token" and args.action == "create":
            secret, webhook_secret = make_token_secrets(settings, args.owner, args.name, args.admin, args.train)
            print(secret)  # stdout holds the token alone, for scripts
            print(f"webhook signing secret (shown once; verifies this token's webhooks): {webhook_secret}",
                  file=sys.stderr)
        elif args.command == "token" and args.action == "list":
            with session_scope(_sessions(settings)) as session:
                for row in session.scalars(select(Token).order_by(Token.created_at)):
                    print(json.dumps(token_view(row)))
        elif args.command == "token" and args.action == "revoke":
            with session_scope(_sessions(settings)) as session:
                if not revoke_token(session, args.token_id):
                    raise ValueError(f"no token with id {args.token_id!r}")
        elif args.command == "reconcile":
            from jobs.queue import make_celery
            from jobs.reconcile import reconcile

            print(json.dumps(reconcile(settings, _sessions(settings), make_celery(settings))))
    except (ValueError, FileNotFoundError) as exc:
        print(f"ftcn-admin: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
