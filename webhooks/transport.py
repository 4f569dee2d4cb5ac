"""How a delivery reaches its receiver, and only a receiver outside our own network.

A subscriber chooses the URL, so without care a subscription turns the platform into a
scanner of the network it runs in (SSRF): the database, Redis, an admin port on
127.0.0.1, the cloud's metadata service with its credentials. So, unless
``WEBHOOK_ALLOW_PRIVATE_URLS`` is on (tests, an on-premise receiver):

- the URL must be ``https://``;
- its host is resolved **once** per attempt and every address it resolves to is checked
  (``refusal``): private, loopback, link-local, unique-local, multicast, reserved,
  shared (100.64/10) and cloud metadata addresses are refused, also inside an IPv6
  address that carries an IPv4 one (``::ffff:10.0.0.1``, 6to4, NAT64);
- the connection goes to an address that was checked: ``http.client`` is given a socket
  factory that connects to those addresses and never resolves the name again, while the
  ``Host`` header and TLS (SNI and the certificate check) still use the host name. A DNS
  answer that changes between the check and the connect (DNS rebinding) cannot move
  the request;
- redirects are never followed (``http.client`` does not follow them; ``urllib.request``,
  used before, did): a 3xx is a failed attempt, with its status and where it pointed;
- no proxy from the environment either (``urllib.request`` honoured ``HTTPS_PROXY``): a
  proxy would connect to whatever the name resolves to by then.

The same rule checks a URL when a subscription is saved (``webhooks.services.check_url``)
and before every attempt, since DNS can change in between.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services of the clouds we run on or next to (credentials live there). Most are
# link-local or unique-local anyway; they are named so the refusal says what they are, and
# the few that look public to ``ipaddress`` (Oracle's) are refused too.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Alibaba (also 100.100.100.200), Huawei, OpenStack
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.253",  # AWS VPC DNS
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS, IPv6
        "fd00:ec2::23",  # AWS VPC DNS, IPv6
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, cloud-internal services

# How much of a receiver's answer is read: only its status matters.
MAX_ANSWER_BYTES = 64 * 1024


class TargetRefused(ValueError):
    """The URL may not be delivered to (or could not be resolved); ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def refusal(address: IPAddress) -> str | None:
    """Why a receiver may not be at ``address`` (None: it is a public address)."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal(embedded)
            return f"{reason} ({embedded} inside an IPv6 address)" if reason else None
        if address in NAT64_LOCAL:
            return "a local-use NAT64 address"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (isinstance(address, ipaddress.IPv6Address) and address in UNIQUE_LOCAL, "a unique-local address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (isinstance(address, ipaddress.IPv4Address) and address in SHARED, "a shared (carrier-grade NAT) address"),
        (not address.is_global, "a non-public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the URL's parts, and the checked addresses to connect to
    (``getaddrinfo``'s family and socket address each)."""

    scheme: str
    host: str  # ASCII (IDNA) form: what Host, SNI and the certificate check use
    port: int
    path: str
    addresses: tuple[tuple[int, tuple], ...]


def split(url: str) -> tuple[str, str, int, str]:
    """``url``'s scheme, host (IDNA), port and request path; TargetRefused if malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise TargetRefused("not a valid http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise TargetRefused("must be an http:// or https:// URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve ``url``'s host once and check every address (unless ``allow_private``)."""
    scheme, host, port, path = split(url)
    if scheme != "https" and not allow_private:
        raise TargetRefused("must use https://")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve ({exc})") from None
    addresses = tuple(dict.fromkeys((family, sockaddr) for family, _t, _p, _c, sockaddr in infos))
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    if not allow_private:
        for _family, sockaddr in addresses:
            address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            reason = refusal(address)
            if reason:
                shown = f"{host} is" if host == str(address) else f"{host} resolves to {address}, which is"
                raise TargetRefused(
                    f"{shown} {reason}: receivers must be on the public internet (WEBHOOK_ALLOW_PRIVATE_URLS is off)"
                )
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's trust store, certificate and host name checked (contexts are safe to
    share between threads; loading the store costs milliseconds, so once per process)."""
    return ssl.create_default_context()


def _connector(target: Target):
    """A stand-in for ``socket.create_connection`` that connects to the checked addresses
    in turn and ignores the host name ``http.client`` passes it: nothing resolves it again."""

    def connect(_address: tuple[str, int], timeout: float | None = None, source_address=None) -> socket.socket:
        error: OSError | None = None
        for family, sockaddr in target.addresses:
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError("no address to connect to")

    return connect


def connection(target: Target, *, timeout: float) -> http.client.HTTPConnection:
    """An ``http.client`` connection to ``target``'s checked addresses. ``host`` stays the
    name, so ``Host``, SNI and the certificate check use it."""
    if target.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=tls_context()
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    # How http.client's connect() opens its socket (an attribute since Python 3.3, used by
    # HTTPSConnection too, which then wraps the socket for ``host``). The SSRF tests fail if
    # a Python release stops calling it.
    conn._create_connection = _connector(target)
    return conn


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool) -> tuple[int, str]:
    """POST ``body`` to ``url``; the receiver's status and, for an answer that is not 2xx,
    what to record. Raises TargetRefused for a URL that may not be delivered to, and
    OSError, ``http.client.HTTPException`` or ``ssl.SSLError`` when the receiver cannot
    be reached or answers garbage."""
    target = resolve(url, allow_private=allow_private)
    conn = connection(target, timeout=timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_ANSWER_BYTES)
        status = response.status
        if 200 <= status < 300:
            return status, ""
        if 300 <= status < 400:
            location = (response.getheader("Location") or "")[:300]
            return status, f"HTTP {status}: redirect to {location or '(no Location)'} not followed"
        return status, f"HTTP {status}"
    finally:
        conn.close()
