"""SSRF guards on client URLs, against a real local HTTP server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from jobs.urls import FetchFailed, UnsafeURL, check_url, fetch_url
from tests.servers import http_server


def fake_resolver(address: str):
    def resolve(host, port, type=0):  # noqa: A002 - getaddrinfo's signature
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
    return resolve


@pytest.mark.parametrize("url,reason", [
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.com/x.mp4", "only http and https"),
    ("/var/data/video.mp4", "only http and https"),
    ("http://127.0.0.1:8000/x.mp4", "non-public address (127.0.0.1)"),
    ("http://localhost/x.mp4", "non-public address"),
    ("http://169.254.169.254/latest/meta-data/", "non-public address (169.254.169.254)"),
    ("http://[::1]/x", "non-public address (::1)"),
    ("http://user:pw@example.com/x", "credentials"),
])
def test_refused_urls(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_url(url)


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.1.1", "172.16.0.5", "100.64.0.1", "0.0.0.0",
                                     "::ffff:127.0.0.1", "fd00::1"])
def test_names_resolving_to_private_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeURL, match="non-public"):
        check_url("https://videos.example.com/a.mp4", resolve=fake_resolver(address))


def test_public_addresses_and_allowlisted_hosts_pass() -> None:
    assert check_url("https://videos.example.com/a.mp4", resolve=fake_resolver("93.184.216.34"))
    assert check_url("http://127.0.0.1:9/x", allowlist=("127.0.0.1",))


def test_fetch_with_redirects_checked_and_size_bounded(tmp_path: Path) -> None:
    routes = {
        "/video.mp4": (200, {}, b"v" * 1000),
        "/to-private": (302, {"Location": "http://10.0.0.1/secret"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-video": (302, {"Location": "/video.mp4"}, b""),
        "/big": (200, {}, b"x" * 5000),
    }
    with http_server(routes) as base:
        allow = ("127.0.0.1",)  # the test server itself is local, so it has to be allow-listed
        assert fetch_url(f"{base}/video.mp4", tmp_path / "a.mp4", max_bytes=2000, allowlist=allow).stat().st_size == 1000
        assert fetch_url(f"{base}/to-video", tmp_path / "b.mp4", max_bytes=2000, allowlist=allow).exists()
        for path, address in (("/to-private", "10.0.0.1"), ("/to-metadata", "169.254.169.254")):
            with pytest.raises(UnsafeURL, match=address):
                fetch_url(f"{base}{path}", tmp_path / "c.mp4", max_bytes=2000, allowlist=allow)
        with pytest.raises(FetchFailed, match="more than the limit"):
            fetch_url(f"{base}/big", tmp_path / "d.mp4", max_bytes=2000, allowlist=allow)
        with pytest.raises(FetchFailed, match="HTTP 404"):
            fetch_url(f"{base}/missing", tmp_path / "e.mp4", max_bytes=2000, allowlist=allow)
        with pytest.raises(UnsafeURL):
            fetch_url(f"{base}/video.mp4", tmp_path / "f.mp4", max_bytes=2000)  # not allow-listed: loopback
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_dns_rebinding_gets_no_second_answer(tmp_path: Path) -> None:
    """A resolver that answers a public address first and 127.0.0.1 second: the fetch asks once, connects to the
    public address it checked (unreachable here, so the fetch fails) and never reaches the local server."""
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    asked: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    with http_server({"/secret": (200, {}, b"internal data")}) as base:
        port = int(base.rsplit(":", 1)[1])
        with pytest.raises((FetchFailed, UnsafeURL)):
            fetch_url(f"http://rebind.example:{port}/secret", tmp_path / "x.mp4", max_bytes=2000, timeout_s=3,
                      resolve=rebinding)
    assert asked == ["rebind.example"] and not (tmp_path / "x.mp4").exists()


def test_the_connection_goes_to_the_checked_address_under_the_original_name(tmp_path: Path) -> None:
    """An allow-listed name that only our resolver knows: the fetch connects to the address it resolved once
    (the name itself resolves nowhere), so nothing re-resolves behind the check."""
    with http_server({"/video.mp4": (200, {}, b"v" * 100)}) as base:
        port = int(base.rsplit(":", 1)[1])
        url = f"http://videos.invalid:{port}/video.mp4"
        fetched = fetch_url(url, tmp_path / "a.mp4", max_bytes=2000, allowlist=("videos.invalid",),
                            resolve=fake_resolver("127.0.0.1"))
        assert fetched.read_bytes() == b"v" * 100
