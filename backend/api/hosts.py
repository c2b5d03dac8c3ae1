"""`AllowedHosts`: the studio answers only to its own names, so a page on another site cannot reach it by
DNS rebinding (attacker.example re-resolved to 127.0.0.1: the browser then treats the studio as that page's
own origin, and with auth off it could list, upload and delete files).

Accepted `Host` names: loopback (`localhost`, 127.0.0.0/8, `[::1]`) on any port; the bound address
`STUDIO_HOST` when it is a name or a single address; any IP address when bound to every interface
(0.0.0.0, `::`) — an IP in `Host` means the browser asked for that IP, which a rebinding attack cannot
make it do; and `STUDIO_ALLOWED_HOSTS` (`studio.example.com`, `*.corp.example` for its subdomains, `*` for
any). Anything else is a 400 in the error envelope.

Hand-written rather than Starlette's `TrustedHostMiddleware`: that one answers in plain text and splits
`Host` on the first `:`, which breaks IPv6 literals (`[::1]:8000`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.errors import error_response
from backend.settings import Settings, is_loopback

WILDCARD_BINDS = {"0.0.0.0", "::", "[::]", ""}


def host_name(host_header: str) -> str | None:
    """The lower-case name or address of a `Host` value (`[::1]:8000` → `::1`); None when malformed."""
    try:
        parts = urlsplit(f"//{host_header.strip()}")
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None
    return (parts.hostname or "").rstrip(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class HostRule:
    """Which `Host` names this studio answers to (see the module docstring)."""

    def __init__(self, settings: Settings):
        bound = settings.host.strip().strip("[]").lower()
        self.any_ip = bound in WILDCARD_BINDS
        patterns = list(settings.allowed_host_list)
        if not self.any_ip:
            patterns.append(bound)
        self.any_host = "*" in patterns
        self.exact = {p for p in patterns if not p.startswith("*")}
        self.suffixes = tuple(p[1:] for p in patterns if p.startswith("*.") and len(p) > 2)

    def allows(self, name: str | None) -> bool:
        if name is None:
            return False
        if self.any_host or is_loopback(name) or name in self.exact or any(map(name.endswith, self.suffixes)):
            return True
        return self.any_ip and _is_ip(name)


class AllowedHosts:
    """400 `invalid_host` for a request whose `Host` is not one of this studio's names."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.rule = app, HostRule(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host", "")
            if not self.rule.allows(host_name(host)):
                shown = host[:100] or "(none)"
                response = error_response(400, f"Host {shown!r} is not a name of this studio, so the request was "
                                               "refused (a page on another site may be trying to reach it through "
                                               "DNS rebinding). If it is this studio's address, add it to "
                                               "STUDIO_ALLOWED_HOSTS (comma-separated; *.example.com for "
                                               "subdomains).", code="invalid_host")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
