"""Which network addresses a fetch may connect to, decided after DNS resolution.

A feed or a redirect can point anywhere, including at this machine, the office network or a
cloud metadata service that hands out credentials. So the client resolves a host name once,
vets every address here, and connects to the vetted address itself (never resolving again),
which is what keeps DNS rebinding out; it does so again on every redirect hop.

By default only globally routable unicast addresses pass. ``FetchSettings.allow_addresses``
opens CIDRs or host names for tests and intranet users. Cloud metadata addresses are refused
whatever is allowed: nothing newswire fetches legitimately lives there.

This module must never open a connection; it only resolves and judges.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CLOUD_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::253",
    )
)
CLOUD_METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """The URL's scheme, host or resolved address is not one we fetch from."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one HTTP request goes: the parts of a URL the client needs, already checked."""

    url: str
    scheme: str
    # Lower-case ASCII (IDNA) host name or IP literal, without IPv6 brackets.
    host: str
    port: int
    # Path and query, as sent on the request line.
    request_target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def parse_target(url: str) -> Target:
    """The request parts of an absolute http(s) URL; raises ``AddressRefused`` for anything else."""
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise AddressRefused(f"{url!r} is not a valid URL ({error})") from error
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise AddressRefused(f"{url!r} uses scheme {scheme or 'none'!r}; only http and https are fetched")
    if not parts.hostname:
        raise AddressRefused(f"{url!r} has no host")
    try:
        host = parts.hostname.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise AddressRefused(f"{url!r} has a host name that is not valid IDNA ({error})") from error
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        request_target=request_target,
    )


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order; raises ``OSError`` on failure."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in answers:
        # Scoped IPv6 answers ("fe80::1%eth0") carry the zone after %; the address is what we vet.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} resolved to no address")
    return addresses


def why_not_public(address: IPAddress) -> str | None:
    """The kind of non-public address this is (for the error detail), or None if it is public."""
    if address in CLOUD_METADATA_ADDRESSES:
        return "a cloud metadata address"
    for embedded in _embedded_ipv4(address):
        reason = why_not_public(embedded)
        if reason is not None:
            return f"{reason} (embedded in {address})"
    for reason, flagged in (
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("an unspecified address", address.is_unspecified),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
        ("not a globally routable address", not address.is_global),
    ):
        if flagged:
            return reason
    return None


def _embedded_ipv4(address: IPAddress) -> Iterable[ipaddress.IPv4Address]:
    # An IPv6 address can carry an IPv4 one that the kernel or a NAT64 gateway will reach.
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        embedded.append(address.teredo[1])
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [candidate for candidate in embedded if candidate is not None]


class AddressPolicy:
    """Judges resolved addresses against the default refusal and the configured allow-list."""

    def __init__(self, allow: Iterable[str]) -> None:
        self._networks: list[IPNetwork] = []
        self._hosts: set[str] = set()
        for entry in allow:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self._hosts.add(entry.strip().rstrip(".").lower())

    def check_host(self, target: Target) -> None:
        """Refuses metadata host names before any resolution happens."""
        if target.host in CLOUD_METADATA_HOSTS:
            raise AddressRefused(f"{target.url} names {target.host}, a cloud metadata host; it is never fetched")

    def check_addresses(self, target: Target, addresses: list[IPAddress]) -> None:
        """Raises ``AddressRefused`` unless every address the host resolved to may be fetched.

        One refused address refuses the host: a name that mixes public and private answers is
        exactly what a rebinding attack looks like.
        """
        for address in addresses:
            reason = why_not_public(address)
            if reason is None:
                continue
            if address in CLOUD_METADATA_ADDRESSES:
                raise AddressRefused(
                    f"{target.url} resolves to {address}, {reason}; it is never fetched, "
                    "whatever fetch.allow_addresses says"
                )
            if target.host in self._hosts or any(address in network for network in self._networks):
                continue
            via = "" if literal_address(target.host) is not None else f" ({target.host} resolves there)"
            raise AddressRefused(
                f"{target.url} points at {address}{via}, {reason}; add its CIDR or host name to "
                "fetch.allow_addresses to fetch it on purpose"
            )
