"""Fetching client-given URLs without becoming a proxy into our own network (SSRF guards).

Only http(s); every address the host name resolves to must be public (not loopback, private, link-local — which
includes the cloud metadata address 169.254.169.254 —, multicast, reserved or unspecified) unless the host is
allow-listed in settings; every redirect is checked again; size and time are bounded. Local paths and ``file://``
are never read; environment proxies are not used (they would move the connection out of our checks).

DNS rebinding: a name is resolved once per connection, its addresses checked, and the connection made to that same
checked address, with the original host name kept for TLS (SNI and certificate check) and the Host header; a DNS
server that answers a public address to the check and a private one a moment later gets no second question.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse


class UnsafeURL(ValueError):
    """A URL the service refuses to fetch, with the reason."""


class Unresolvable(UnsafeURL):
    """The host name does not resolve (now): refused at submission, worth retrying for a webhook."""


class FetchFailed(RuntimeError):
    """The URL was allowed but fetching it failed (HTTP error, too large, too slow)."""


METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def _address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address in METADATA_ADDRESSES or address.is_private or address.is_loopback or address.is_link_local
        or address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global
    )


def _parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL we may fetch at all (scheme, host, no credentials)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https URLs are fetched, not {parsed.scheme or 'a bare path'!r}")
    host = parsed.hostname
    if not host:
        raise UnsafeURL("the URL has no host")
    if parsed.username or parsed.password:
        raise UnsafeURL("URLs with credentials are not fetched")
    return parsed.scheme, host, parsed.port or (443 if parsed.scheme == "https" else 80)


def checked_address(host: str, port: int, allowlist: tuple[str, ...] = (), resolve=socket.getaddrinfo) -> str:
    """Resolve ``host`` once and return the address to connect to; every address it resolves to must be public
    (unless the host is allow-listed)."""
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise Unresolvable(f"the host {host!r} does not resolve") from None
    addresses = [info[4][0].split("%")[0] for info in infos]
    if not addresses:
        raise Unresolvable(f"the host {host!r} does not resolve")
    if host not in allowlist:
        for text in addresses:
            address = ipaddress.ip_address(text)
            if not _address_is_public(address):
                raise UnsafeURL(f"the host {host!r} resolves to a non-public address ({address})")
    return addresses[0]


def check_url(url: str, allowlist: tuple[str, ...] = (), resolve=socket.getaddrinfo) -> str:
    """Return the URL if it may be fetched; raise :class:`UnsafeURL` saying why not (the API's early answer; the
    fetch checks again on the address it connects to)."""
    _, host, port = _parse(url)
    if host not in allowlist:
        checked_address(host, port, allowlist, resolve)
    return url


def _pinned(base: type[http.client.HTTPConnection], allowlist: tuple[str, ...], resolve) -> type:
    """``base`` that resolves its host once, checks the address and connects to exactly that address (the host
    name still goes to TLS and the Host header)."""

    class Pinned(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            address = checked_address(self.host, self.port, allowlist, resolve)

            def to_checked(target, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
                return socket.create_connection((address, target[1]), timeout, source_address)

            self._create_connection = to_checked
            super().connect()

    return Pinned


class _PinnedHTTP(urllib.request.HTTPHandler):
    def __init__(self, allowlist: tuple[str, ...], resolve) -> None:
        super().__init__()
        self.connection = _pinned(http.client.HTTPConnection, allowlist, resolve)

    def http_open(self, req):  # noqa: N802 - urllib's name
        return self.do_open(self.connection, req)


class _PinnedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, allowlist: tuple[str, ...], resolve) -> None:
        super().__init__(context=ssl.create_default_context())
        self.connection = _pinned(http.client.HTTPSConnection, allowlist, resolve)

    def https_open(self, req):  # noqa: N802 - urllib's name
        return self.do_open(self.connection, req, context=self._context)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allowlist: tuple[str, ...], max_redirects: int) -> None:
        self.allowlist = allowlist
        self.max_redirections = max_redirects

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: N802 - urllib's name
        _parse(newurl)  # scheme, host, credentials; the address is checked when the redirect connects
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: N802 - urllib's name
        return None  # the 3xx answer is the outcome (a webhook receiver that moves must be updated, not followed)


def _opener(allowlist: tuple[str, ...], resolve, max_redirects: int) -> urllib.request.OpenerDirector:
    """urllib with every guard: no proxies, pinned and checked addresses, redirects checked (or not followed)."""
    opener = urllib.request.OpenerDirector()
    redirects = _CheckedRedirects(allowlist, max_redirects) if max_redirects else _NoRedirects()
    for handler in (urllib.request.ProxyHandler({}), urllib.request.UnknownHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), redirects,
                    urllib.request.HTTPErrorProcessor(), _PinnedHTTP(allowlist, resolve),
                    _PinnedHTTPS(allowlist, resolve)):
        opener.add_handler(handler)
    return opener


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float,
              allowlist: tuple[str, ...] = (), resolve=socket.getaddrinfo) -> int:
    """POST a JSON body with every guard applied (redirects are not followed); the HTTP status answered.
    Raises :class:`UnsafeURL` for a refused address and :class:`FetchFailed` when no answer came."""
    _parse(url)
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"User-Agent": "ftcn-service", "Content-Type": "application/json",
                                              **headers})
    try:
        with _opener(allowlist, resolve, 0).open(request, timeout=timeout_s) as response:
            response.read(1 << 16)  # the receiver's answer is not used; a bounded read lets it finish
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, UnsafeURL):
            raise reason from None
        raise FetchFailed(f"no answer: {reason}") from None


def fetch_url(url: str, destination: Path, *, max_bytes: int, timeout_s: float = 30.0,
              allowlist: tuple[str, ...] = (), max_redirects: int = 5, resolve=socket.getaddrinfo) -> Path:
    """Download ``url`` to ``destination`` with every guard applied; a partial file never remains."""
    _parse(url)
    opener = _opener(allowlist, resolve, max_redirects)
    partial = destination.with_name(destination.name + ".partial")
    try:
        with opener.open(urllib.request.Request(url, headers={"User-Agent": "ftcn-service"}),
                         timeout=timeout_s) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchFailed(f"the URL declares {int(declared)} bytes, more than the limit of {max_bytes}")
            size = 0
            with open(partial, "wb") as handle:
                while block := response.read(1 << 16):
                    size += len(block)
                    if size > max_bytes:
                        raise FetchFailed(f"the URL sent more than the limit of {max_bytes} bytes")
                    handle.write(block)
        partial.replace(destination)
        return destination
    except urllib.error.HTTPError as exc:
        raise FetchFailed(f"the URL answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, UnsafeURL):
            raise reason from None
        raise FetchFailed(f"fetching the URL failed: {reason}") from None
    finally:
        partial.unlink(missing_ok=True)
