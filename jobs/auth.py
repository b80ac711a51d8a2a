"""API tokens and who may see what: one place for the access rules shared by the API and ``ftcn-admin``.

A token is ``ftcn_`` + 43 random URL-safe characters (256 bits). Only its SHA-256 is stored: the secret has full
entropy, so a fast hash is enough and a database leak reveals no usable token. Everything a token creates belongs
to its owner; another owner's job, dataset or model answers 404 (not 403: its existence is not revealed). Models
registered by an operator without an owner are shared with everyone. Admin tokens see everything.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from jobs.models import Model, Token, rfc3339, utcnow

PREFIX = "ftcn_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the owner their objects belong to, and what they may do."""

    owner: str | None
    admin: bool = False
    can_train: bool = False
    token_id: str | None = None


#: The caller when FTCN_AUTH=open: a single user who owns nothing in particular and may do everything.
OPEN = Principal(owner=None, admin=True, can_train=True)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, owner: str, name: str = "", *, admin: bool = False,
                 can_train: bool = False) -> tuple[Token, str]:
    """A new token row and its secret (shown once: only the hash is kept). The row also holds the token's webhook
    signing secret (``jobs.webhooks``), shown once beside it."""
    from jobs.webhooks import new_secret

    if not owner.strip():
        raise ValueError("a token needs an owner")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = Token(owner=owner.strip(), name=name or owner.strip(), secret_hash=hash_secret(secret), admin=admin,
                  can_train=can_train, webhook_secret=new_secret())
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal of a valid, unrevoked token; None otherwise."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = session.scalar(select(Token).where(Token.secret_hash == hash_secret(secret)))
    if token is None or token.revoked_at is not None:
        return None
    return Principal(owner=token.owner, admin=token.admin, can_train=token.can_train, token_id=token.id)


def revoke_token(session: Session, token_id: str) -> bool:
    token = session.get(Token, token_id)
    if token is None:
        return False
    token.revoked_at = token.revoked_at or utcnow()
    return True


def visible(query: Select, entity: Any, principal: Principal) -> Select:
    """``query`` narrowed to the rows of ``entity`` this principal may see."""
    if principal.admin:
        return query
    if entity is Model:  # shared models (no owner) are usable by everyone
        return query.where(or_(entity.owner == principal.owner, entity.owner.is_(None)))
    return query.where(entity.owner == principal.owner)


def can_see(row: Any, principal: Principal) -> bool:
    """The same rule as :func:`visible`, for a row already loaded."""
    return may_see(row.owner, principal, shared=isinstance(row, Model))


def may_see(owner: str | None, principal: Principal, *, shared: bool) -> bool:
    """The rule for one owner value; ``shared``: rows without an owner (models) are everyone's."""
    return principal.admin or owner == principal.owner or (shared and owner is None)


def token_view(token: Token) -> dict[str, Any]:
    return {"id": token.id, "owner": token.owner, "name": token.name, "admin": token.admin,
            "train": token.can_train, "created_at": rfc3339(token.created_at),
            "revoked_at": rfc3339(token.revoked_at)}
