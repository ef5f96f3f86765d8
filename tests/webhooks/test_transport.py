"""No SSRF: with private targets not allowed (production), webhooks go only to https URLs that
resolve to public addresses, checked when an endpoint is saved and again at every send."""

from __future__ import annotations

import pytest

from loyalty.webhooks import services, transport
from loyalty.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_targets(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",  # plain http, and loopback
        "https://127.0.0.1/hooks",
        "https://10.0.0.1/hooks",
        "https://192.168.1.20/hooks",
        "https://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://localhost/hooks",  # a host name that resolves to loopback
        "https://user:secret@93.184.215.14/hooks",
        "ftp://93.184.215.14/hooks",
    ],
)
def test_an_endpoint_on_an_unsafe_url_is_refused_and_nothing_is_saved(production_targets, url):
    with pytest.raises(transport.UnsafeTarget):
        services.endpoint_create(partner=PartnerFactory(), url=url)

    assert not WebhookEndpoint.objects.exists()


def test_a_public_https_address_is_accepted(production_targets):
    endpoint = services.endpoint_create(partner=PartnerFactory(), url="https://93.184.215.14/hooks")

    assert endpoint.url == "https://93.184.215.14/hooks"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_global_unicast_addresses_count_as_public(address, public):
    assert transport.address_is_public(address) is public


def test_an_endpoint_saved_while_loopback_was_allowed_is_refused_at_send_time(
    settings, receiver, program
):
    endpoint = services.endpoint_create(partner=PartnerFactory(), url=receiver.url)
    services.event_record(
        event_type="points.earned",
        data={},
        occurred_at=endpoint.created_at,
        endpoints=[endpoint],
    )
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    assert services.deliver_due() == 0

    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "http" in delivery.last_error


def test_the_request_goes_to_the_address_that_was_checked(receiver, monkeypatch):
    """DNS rebinding: the name is resolved once, checked, and that address is connected to."""
    import socket

    real_getaddrinfo = socket.getaddrinfo
    # A second lookup would get another address (where nothing listens).
    answers = iter(["127.0.0.1", "127.0.0.2"])

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.partner.example":
            return real_getaddrinfo(next(answers), port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    url = receiver.url.replace("127.0.0.1", "hooks.partner.example")

    response = transport.post(url, body=b"{}", headers={"content-type": "application/json"})

    assert response.status == 200
    [received] = receiver.requests
    assert received.headers["host"].startswith("hooks.partner.example")


@pytest.fixture
def tls_receiver(tmp_path):
    """An https receiver on 127.0.0.1 whose certificate names hooks.partner.example."""
    import http.server
    import shutil
    import ssl
    import subprocess
    import threading

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.partner.example",
            "-addext", "subjectAltName=DNS:hooks.partner.example",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            hosts.append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], cert, hosts
    finally:
        server.shutdown()
        server.server_close()


def test_https_goes_to_the_checked_address_and_verifies_the_certificate_for_the_host_name(
    tls_receiver, monkeypatch
):
    import socket
    import ssl

    port, cert, hosts = tls_receiver
    real_getaddrinfo = socket.getaddrinfo

    def partner_dns(host, port, *args, **kwargs):
        return real_getaddrinfo("127.0.0.1" if host == "hooks.partner.example" else host, port)

    monkeypatch.setattr(socket, "getaddrinfo", partner_dns)
    url = f"https://hooks.partner.example:{port}/hooks"

    with pytest.raises(ssl.SSLCertVerificationError):  # a certificate nobody vouches for
        transport.post(url, body=b"{}", headers={})
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    response = transport.post(url, body=b"{}", headers={})

    assert response.status == 204
    assert hosts == [f"hooks.partner.example:{port}"]
