"""Who is calling and how often: bearer-token authentication and per-token rate limits for the API blueprint.

The rules themselves (hashing, ownership, visibility) live in ``jobs.auth``; this module only reads the request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from api.problems import Problem
from api.ratelimit import Rate, RateLimiter, parse_rates
from jobs.auth import OPEN, Principal, authenticate, hash_secret
from jobs.db import session_scope
from jobs.settings import Settings, SettingsError

View = TypeVar("View", bound=Callable[..., Any])


class Access(str, Enum):
    """How a view is reached, marked on the view itself by a decorator (:func:`public`, :func:`submits`)."""

    TOKEN = "token"  # the default: a token (with FTCN_AUTH=tokens), and the per-endpoint rate limit
    PUBLIC = "public"  # anyone: probes, the API description, signed links (the signature is the credential)
    SUBMIT = "submit"  # a token, and the tighter submission limit, shared by every endpoint that creates jobs


def _marked(access: Access) -> Callable[[View], View]:
    def mark(view: View) -> View:
        view.access = access  # type: ignore[attr-defined]
        return view

    return mark


#: Marks a view anyone may call.
public = _marked(Access.PUBLIC)
#: Marks a view that creates jobs.
submits = _marked(Access.SUBMIT)


def needs_train(view: View) -> View:
    """Marks a view only tokens with the train permission may call (preprocess and train jobs)."""
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require_train()
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


def access_of(endpoint: str | None) -> Access:
    view = current_app.view_functions.get(endpoint or "")
    return getattr(view, "access", Access.TOKEN)

#: Seconds a verified token is remembered per API process: a revoked token stops working within this time, and
#: a busy client costs no database look-up per request.
AUTH_CACHE_S = 5.0
AUTH_CACHE_MAX = 10_000
_cache_lock = threading.Lock()


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass(frozen=True)
class RateLimits:
    """The limiter and the rates it applies: every API endpoint per token, submissions by a tighter rate."""

    limiter: RateLimiter
    default: tuple[Rate, ...]
    submit: tuple[Rate, ...]


def make_rate_limits(settings: Settings) -> RateLimits:
    """Counted in the service's Redis, so every API process shares them; a malformed limit stops start-up."""
    try:
        default, submit = parse_rates(settings.rate_limit), parse_rates(settings.submit_rate_limit)
    except ValueError as exc:
        raise SettingsError(f"FTCN_RATE_LIMIT / FTCN_SUBMIT_RATE_LIMIT: {exc}") from None
    return RateLimits(RateLimiter(settings.redis_url), default, submit)


def limit_request() -> None:
    """Count the request against its token's limits (per endpoint; all submissions share one count), or the
    client address's without a token (FTCN_AUTH=open); 429 with Retry-After past a limit. Runs after
    authentication, so a token's limits follow the token itself, whatever it is called from."""
    access = access_of(request.endpoint)
    if access is Access.PUBLIC:
        return
    who = f"token:{g.principal.token_id}" if g.principal.token_id else f"addr:{request.remote_addr}"
    submit = access is Access.SUBMIT
    limits: RateLimits = current_app.extensions["ftcn"].rate_limits
    _enforce(limits.limiter, f"{'submit' if submit else request.endpoint}:{who}",
             limits.submit if submit else limits.default)


def _enforce(limiter: RateLimiter, key: str, rates: tuple[Rate, ...]) -> None:
    exceeded = limiter.hit(key, rates)
    if exceeded is not None:
        raise Problem(429, "rate-limited", "Too many requests", f"rate limit exceeded ({exceeded.rate.text})",
                      headers={"Retry-After": str(exceeded.retry_after_s)})


def authenticate_request() -> None:
    """Set ``g.principal`` for API endpoints; 401 without a valid token when FTCN_AUTH=tokens."""
    if access_of(request.endpoint) is Access.PUBLIC:
        return
    state = current_app.extensions["ftcn"]
    if state.settings.auth == "open":
        g.principal = OPEN
        return
    secret = bearer()
    if secret is None:
        raise Problem(401, "unauthenticated", "Token required",
                      "send 'Authorization: Bearer <token>' (tokens are made with: ftcn-admin token create)",
                      headers={"WWW-Authenticate": 'Bearer realm="ftcn"'})
    principal = _cached_principal(state, secret)
    if principal is None:
        raise Problem(401, "bad-token", "Token invalid or revoked", "the bearer token is not a valid, active token",
                      headers={"WWW-Authenticate": 'Bearer realm="ftcn", error="invalid_token"'})
    g.principal = principal


def _cached_principal(state, secret: str) -> Principal | None:
    """The token's principal, from this app's short-lived cache or the database. Database look-ups are limited
    per client address: a client guessing tokens meets 429s, not a busy database (a real client looks its
    token up once per AUTH_CACHE_S)."""
    key = hash_secret(secret)
    now = time.monotonic()
    cached = state.verified_tokens.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    _enforce(state.rate_limits.limiter, f"token-lookup:addr:{request.remote_addr}", state.rate_limits.default)
    with session_scope(state.sessions) as session:
        found = authenticate(session, secret)
    if found is not None:
        with _cache_lock:
            if len(state.verified_tokens) >= AUTH_CACHE_MAX:
                state.verified_tokens.clear()
            state.verified_tokens[key] = (now + AUTH_CACHE_S, found)
    return found


def principal() -> Principal:
    return g.principal


def require_train() -> None:
    if not principal().can_train:
        raise Problem(403, "forbidden", "Training not permitted",
                      "this token may not preprocess or train; ask an operator for a token with the train permission")
