"""Where webhooks may go, and the one HTTP POST that takes them there.

No SSRF: a target must be https and resolve only to public addresses (no private, loopback,
link-local, multicast, reserved or unspecified ones), checked when an endpoint is saved and
again at every send. At send time the request goes to the very address that was checked (the
connection is pinned to it; TLS still verifies the certificate against the host name), so a DNS
answer that changes between the check and the connection (DNS rebinding) cannot redirect it.
Redirects are not followed. `WEBHOOK_ALLOW_PRIVATE_TARGETS` (tests, local demo) lifts both
rules so a receiver on 127.0.0.1 over plain http can be used.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from loyalty.errors import ValidationFailed

TIMEOUT_SECONDS = 5.0
# Only the start of an answer is read (and kept for the delivery log).
MAX_RESPONSE_BYTES = 4096


class UnsafeTarget(ValidationFailed):
    code = "webhook_target_refused"
    field = "url"
    default_message = _("Webhooks can only be sent to a public https address.")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP address the request goes to


def _private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(_("The host %(host)s could not be resolved.") % {"host": host}) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def target_check(url: str) -> Target:
    """The checked target of `url`, or UnsafeTarget with the reason."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(_("Enter a valid URL.")) from exc
    allow_private = _private_allowed()
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeTarget(_("Webhook URLs must start with https://."))
    if not parts.hostname:
        raise UnsafeTarget(_("Enter a valid URL."))
    if parts.username or parts.password:
        raise UnsafeTarget(_("Webhook URLs cannot contain a user name or password."))
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(parts.hostname, port)
    if not allow_private and not all(address_is_public(address) for address in addresses):
        raise UnsafeTarget(
            _("%(host)s resolves to a private, loopback or link-local address.")
            % {"host": parts.hostname}
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        scheme=parts.scheme, host=parts.hostname, port=port, path=path, address=addresses[0]
    )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Response:
    status: int
    body: str


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url` (checked again now); raises UnsafeTarget or OSError."""
    target = target_check(url)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
        return Response(status=response.status, body=text)
    except http.client.HTTPException as exc:
        raise OSError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
