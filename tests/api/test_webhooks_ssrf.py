"""Webhooks cannot reach inside (security issue item 6): with WEBHOOK_ALLOW_PRIVATE_URLS
off, a subscription to a private, loopback, link-local, unique-local or cloud metadata
address is refused (400), a delivery to a host that resolves to one by then is a failed
attempt that says why, a redirect is never followed, and a DNS answer that changes
between the check and the connect (DNS rebinding) cannot move the connection.

"Public" receivers are simulated: a fake resolver answers for their names, and a patched
``socket.connect`` records where each connection was meant to go and takes the ones for
the public address to a local receiver (TLS with a certificate for the name, made with
the ``openssl`` command)."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from consent import services as consent_services
from webhooks import services, transport
from webhooks.admin import SubscriptionForm
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

HOST = "hooks.example.com"
PUBLIC = "93.184.216.34"  # a public address: nothing connects to it, the patched connect redirects


@pytest.fixture(autouse=True)
def _private_targets_refused(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    services.forget_subscribers()
    yield
    services.forget_subscribers()


class FakeDns:
    """``socket.getaddrinfo`` for the names a test gives answers for: each call takes the
    next answer, the last one repeats. Numeric hosts (what sockets resolve) go to the
    real resolver. ``calls`` counts the look-ups of each name."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.answers: dict[str, list[list[str]]] = {}
        self.calls: dict[str, int] = {}

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.calls[name] = self.calls.get(name, 0) + 1
        answers = self.answers[name]
        addresses = answers[min(self.calls[name], len(answers)) - 1]
        port = int(port)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in addresses
        ]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def connects(monkeypatch):
    """Every TCP connection the process opens, where it was meant to go; a connection to
    PUBLIC really goes to 127.0.0.1 on the same port (where the test's receiver is)."""
    made: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        made.append((address[0], address[1]))
        if address[0] == PUBLIC:
            address = ("127.0.0.1", address[1])
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return made


class Answering:
    """A receiver on 127.0.0.1 (TLS if given a certificate) that records each request with
    the TLS server name the client sent, and answers with the next (status, headers) of
    its script (200 when it runs out)."""

    def __init__(self, *, certificate: tuple[str, str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = outer.script.pop(0) if outer.script else (200, {})
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(status)
                for name, value in {**headers, "Content-Length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

            do_GET = do_POST  # noqa: N815 - a followed redirect could turn into a GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Answering:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for HOST: (certificate file, key file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def public_receiver(certificate, dns, connects, monkeypatch):
    """A TLS receiver that looks public: HOST resolves to PUBLIC, connections to PUBLIC
    reach it, and deliveries trust its certificate (and only it)."""
    monkeypatch.setattr(transport, "tls_context", lambda: ssl.create_default_context(cafile=certificate[0]))
    dns.answers[HOST] = [[PUBLIC]]
    with Answering(certificate=certificate) as receiver:
        receiver.url = f"https://{HOST}:{receiver.port}/hooks"
        yield receiver


def subscribe(api, url: str):
    return api.post("/api/v1/webhooks/", {"url": url, "events": ["consent.changed"]})


@pytest.fixture
def withdraw(marketing, alice, django_capture_on_commit_callbacks):
    """Alice withdraws in the privacy center, and what that sets off runs (the delivery)."""

    def withdraw() -> Delivery:
        with django_capture_on_commit_callbacks(execute=True):
            consent_services.record_consent(member=alice, brand=marketing.brand, purpose=marketing, channel="sms",
                                            action="withdrawn", source_type="privacy_center")  # fmt: skip
        return Delivery.objects.get()

    return withdraw


def history(delivery: Delivery) -> list[tuple[int | None, str]]:
    return list(delivery.attempt_log.values_list("status_code", "error"))


# --- Subscribing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hooks", "127.0.0.1 is a loopback address"),
        ("https://10.1.2.3/hooks", "10.1.2.3 is a private address"),
        ("https://192.168.0.10:8443/hooks", "192.168.0.10 is a private address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("https://100.100.100.200/latest/meta-data/", "100.100.100.200 is a cloud metadata address"),
        ("https://[::1]/hooks", "::1 is a loopback address"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a cloud metadata address"),
        ("https://[fd12:3456::1]/hooks", "fd12:3456::1 is a unique-local address"),
        ("https://[fe80::1]/hooks", "fe80::1 is a link-local address"),
        ("https://[::ffff:10.0.0.1]/hooks", "a private address (10.0.0.1 inside an IPv6 address)"),
        ("https://224.0.0.1/hooks", "224.0.0.1 is a multicast address"),
        ("https://240.0.0.1/hooks", "240.0.0.1 is a reserved address"),
        ("https://0.0.0.0/hooks", "0.0.0.0 is an unspecified address"),
    ],
)
def test_subscribing_a_private_address_is_refused(api, url, reason):
    response = subscribe(api, url)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "url" and reason in error["message"], error
    assert "receivers must be on the public internet" in error["message"]
    assert not Subscription.objects.exists()


def test_a_host_name_resolving_to_a_private_address_is_refused(api, dns):
    dns.answers["hooks.corp.example"] = [["10.20.30.40"]]
    dns.answers["mixed.example.com"] = [[PUBLIC, "127.0.0.1"]]  # every address counts, not the first
    dns.answers["metadata.example.com"] = [["169.254.169.254"]]
    for host, reason in [
        ("hooks.corp.example", "hooks.corp.example resolves to 10.20.30.40, which is a private address"),
        ("mixed.example.com", "mixed.example.com resolves to 127.0.0.1, which is a loopback address"),
        ("metadata.example.com", "resolves to 169.254.169.254, which is a cloud metadata address"),
    ]:
        response = subscribe(api, f"https://{host}/hooks")
        assert response.status_code == 400, host
        assert reason in response.json()["errors"][0]["message"]
    assert not Subscription.objects.exists()


def test_plain_http_and_names_that_do_not_resolve_are_refused(api, dns):
    dns.answers[HOST] = [[PUBLIC]]
    response = subscribe(api, f"http://{HOST}/hooks")
    assert response.status_code == 400 and "must use https://" in response.json()["detail"]
    response = subscribe(api, "https://no-such-host.invalid/hooks")  # the real resolver: .invalid never resolves
    assert response.status_code == 400 and "does not resolve" in response.json()["detail"]


def test_a_public_receiver_is_accepted(api, dns):
    dns.answers[HOST] = [[PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]]
    response = subscribe(api, f"https://{HOST}/hooks")
    assert response.status_code == 201, response.json()
    assert Subscription.objects.get().url == f"https://{HOST}/hooks"


def test_the_admin_form_refuses_a_private_address(brand, dns):
    dns.answers["hooks.corp.example"] = [["10.20.30.40"]]
    for url in ("https://hooks.corp.example/x", "https://169.254.169.254/latest/meta-data/"):
        form = SubscriptionForm(data={"brand": brand.pk, "url": url, "events": '["consent.changed"]'})
        assert not form.is_valid() and "receivers must be on the public internet" in form.errors["url"][0]
    dns.answers[HOST] = [[PUBLIC]]
    form = SubscriptionForm(data={"brand": brand.pk, "url": f"https://{HOST}/x", "events": '["consent.changed"]'})
    assert form.is_valid(), form.errors


def test_the_allow_setting_lets_private_receivers_in(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert subscribe(api, "http://127.0.0.1:9/hooks").status_code == 201


# --- Delivering ---------------------------------------------------------------------------


def test_a_host_that_resolves_to_a_private_address_by_now_is_a_failed_attempt(
    api, public_receiver, dns, connects, withdraw, client, superuser
):
    """Subscribed while public; by the time of the delivery the name points at 127.0.0.1:
    the attempt is refused before any connection, recorded in the history, and retried."""
    assert subscribe(api, public_receiver.url).status_code == 201
    dns.answers[HOST] = [["127.0.0.1"]]
    dns.calls.clear()
    delivery = withdraw()
    assert delivery.status == "retrying" and delivery.last_status_code is None
    reason = f"Refused: {HOST} resolves to 127.0.0.1, which is a loopback address"
    [(status, error)] = history(delivery)
    assert status is None and error.startswith(reason)
    assert public_receiver.requests == [] and [c for c in connects if c[1] == public_receiver.port] == []
    client.force_login(superuser)
    page = client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/", HTTP_ACCEPT_LANGUAGE="en")
    assert reason in page.content.decode()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "Refused: 169.254.169.254 is a cloud metadata address"),
        ("https://[::1]:8443/hooks", "Refused: ::1 is a loopback address"),
        ("https://10.0.0.7/hooks", "Refused: 10.0.0.7 is a private address"),
        ("http://203.0.113.10/hooks", "Refused: must use https://"),
    ],
)
def test_a_subscription_saved_while_private_targets_were_allowed_is_refused_at_send_time(
    brand, url, reason, connects, withdraw
):
    Subscription.objects.create(brand=brand, url=url, events=["consent.changed"], secret="whsec_x")
    delivery = withdraw()
    assert delivery.status == "retrying"
    assert history(delivery)[0][1].startswith(reason)
    assert connects == []


def test_a_redirect_is_not_followed(api, public_receiver, connects, withdraw):
    """The receiver answers 302 to the metadata service (here: a local server standing in
    for it). The delivery fails with the status; nothing goes where it points."""
    with Answering() as inside:
        target = f"http://127.0.0.1:{inside.port}/latest/meta-data/iam/security-credentials/"
        public_receiver.script = [(302, {"Location": target})]
        assert subscribe(api, public_receiver.url).status_code == 201
        delivery = withdraw()
    assert delivery.status == "retrying" and delivery.last_status_code == 302
    assert history(delivery) == [(302, f"HTTP 302: redirect to {target} not followed")]
    assert len(public_receiver.requests) == 1 and inside.requests == []
    assert [c for c in connects if c[1] == inside.port] == []


@pytest.mark.parametrize("status", [301, 307, 308])
def test_redirects_are_not_followed_even_when_private_targets_are_allowed(settings, brand, withdraw, status):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with Answering() as receiver, Answering() as elsewhere:
        receiver.script = [(status, {"Location": f"http://127.0.0.1:{elsewhere.port}/hooks"})]
        services.create_subscription(brand=brand, url=f"http://127.0.0.1:{receiver.port}/hooks",
                                     events=["consent.changed"])  # fmt: skip
        delivery = withdraw()
    assert delivery.last_status_code == status and delivery.status == "retrying"
    assert len(receiver.requests) == 1 and elsewhere.requests == []


def test_dns_rebinding_cannot_move_the_connection(api, public_receiver, dns, connects, withdraw):
    """The name resolves to a public address for the check and to 127.0.0.1 on any later
    look-up: the connection goes to the address that was checked, and the receiver still
    sees the host name in Host and TLS (SNI, and its certificate is checked for it)."""
    assert subscribe(api, public_receiver.url).status_code == 201
    dns.answers[HOST] = [[PUBLIC], ["127.0.0.1"]]
    dns.calls.clear()
    delivery = withdraw()
    assert delivery.status == "succeeded", history(delivery)
    assert dns.calls == {HOST: 1}  # resolved once per attempt
    assert [c for c in connects if c[1] == public_receiver.port] == [(PUBLIC, public_receiver.port)]
    [request] = public_receiver.requests
    assert request["headers"]["Host"] == f"{HOST}:{public_receiver.port}"
    assert request["path"] == "/hooks"
    assert public_receiver.server_names == [HOST]
    assert json.loads(request["body"])["data"]["event"]["action"] == "withdrawn"


def test_a_certificate_for_another_name_fails_the_attempt(api, public_receiver, dns, withdraw):
    """Pinning the address does not weaken TLS: the certificate is checked for the URL's
    name, here another name that resolves to the same receiver."""
    dns.answers["other.example.com"] = [[PUBLIC]]
    assert subscribe(api, f"https://other.example.com:{public_receiver.port}/hooks").status_code == 201
    delivery = withdraw()
    assert delivery.status == "retrying"
    assert "CERTIFICATE_VERIFY_FAILED" in history(delivery)[0][1]
    assert public_receiver.requests == []
