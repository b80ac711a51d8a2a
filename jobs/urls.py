"""Fetching client-given URLs without becoming a proxy into our own network (SSRF guards).

Only http(s); every address the host name resolves to must be public (not loopback, private, link-local — which
includes the cloud metadata address 169.254.169.254 —, multicast, reserved or unspecified) unless the host is
allow-listed in settings; every redirect is checked again; size and time are bounded. Local paths and ``file://``
are never read.

Known limit: the check resolves the name and the HTTP client resolves it again, so a DNS server that answers
differently within a second (rebinding) could slip past; deployments that care run workers with egress rules too.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse


class UnsafeURL(ValueError):
    """A URL the service refuses to fetch, with the reason."""


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


def check_url(url: str, allowlist: tuple[str, ...] = (), resolve=socket.getaddrinfo) -> str:
    """Return the URL if it may be fetched; raise :class:`UnsafeURL` saying why not."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https URLs are fetched, not {parsed.scheme or 'a bare path'!r}")
    host = parsed.hostname
    if not host:
        raise UnsafeURL("the URL has no host")
    if parsed.username or parsed.password:
        raise UnsafeURL("URLs with credentials are not fetched")
    if host in allowlist:
        return url
    try:
        infos = resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeURL(f"the host {host!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not _address_is_public(address):
            raise UnsafeURL(f"the host {host!r} resolves to a non-public address ({address})")
    return url


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allowlist: tuple[str, ...], max_redirects: int) -> None:
        self.allowlist = allowlist
        self.max_redirections = max_redirects

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: N802 - urllib's name
        check_url(newurl, self.allowlist)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, destination: Path, *, max_bytes: int, timeout_s: float = 30.0,
              allowlist: tuple[str, ...] = (), max_redirects: int = 5) -> Path:
    """Download ``url`` to ``destination`` with every guard applied; a partial file never remains."""
    check_url(url, allowlist)
    opener = urllib.request.build_opener(_CheckedRedirects(allowlist, max_redirects))
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
