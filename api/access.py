"""Who is calling and how often: bearer-token authentication and per-token rate limits for the API blueprint.

The rules themselves (hashing, ownership, visibility) live in ``jobs.auth``; this module only reads the request.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, current_app, g, request
from flask_limiter import Limiter

from api.problems import Problem
from jobs.auth import OPEN, Principal, authenticate, hash_secret
from jobs.db import session_scope
from jobs.settings import Settings

#: Endpoints anyone may call: probes, the API description, signed downloads (the signature is the credential).
PUBLIC_ENDPOINTS = {"api.healthcheck", "api.openapi", "api.download"}
#: Seconds a verified token is remembered per API process: a revoked token stops working within this time, and
#: a busy client costs no database look-up per request.
AUTH_CACHE_S = 5.0
AUTH_CACHE_MAX = 10_000
_cache_lock = threading.Lock()
#: Endpoints that create jobs: they get the (tighter) submit limit.
SUBMIT_ENDPOINTS = {"api.submit_predict", "api.submit_preprocess", "api.submit_train"}


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def rate_key() -> str:
    """Limits count per token (its hash: no database look-up needed), else per client address."""
    secret = bearer()
    return f"token:{hash_secret(secret)[:24]}" if secret else f"addr:{request.remote_addr}"


def make_limiter(app: Flask, settings: Settings) -> Limiter:
    """Per-endpoint limits per token, counted in Redis (so every API process shares them); 429 + Retry-After when
    exceeded (api.problems). If Redis is down the limiter falls back to per-process memory rather than failing
    requests. X-RateLimit-* headers are off: they cost a second Redis round trip on every request."""

    def limit_for_request() -> str:
        return settings.submit_rate_limit if request.endpoint in SUBMIT_ENDPOINTS else settings.rate_limit

    def exempt() -> bool:
        endpoint = request.endpoint or ""
        return not endpoint.startswith("api.") or endpoint in PUBLIC_ENDPOINTS

    return Limiter(rate_key, app=app, default_limits=[limit_for_request], storage_uri=settings.redis_url,
                   storage_options={"socket_connect_timeout": 1, "socket_timeout": 1}, headers_enabled=False,
                   swallow_errors=True, in_memory_fallback_enabled=True, strategy="fixed-window",
                   default_limits_exempt_when=exempt, key_prefix="ftcn")


def authenticate_request() -> None:
    """Set ``g.principal`` for API endpoints; 401 without a valid token when FTCN_AUTH=tokens."""
    if request.endpoint in PUBLIC_ENDPOINTS:
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
    """The token's principal, from this app's short-lived cache or the database."""
    key = hash_secret(secret)
    now = time.monotonic()
    cached = state.verified_tokens.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
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
