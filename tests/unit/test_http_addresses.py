"""Which addresses the HTTP layer refuses, and how URLs become request targets."""

from __future__ import annotations

import ipaddress

import pytest

from connectors.http.addresses import AddressPolicy, AddressRefused, parse_target, why_not_public


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not a globally routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:a00:1::", "private"),
    ],
)
def test_non_public_addresses_are_named(address: str, reason: str) -> None:
    assert reason in (why_not_public(ipaddress.ip_address(address)) or "")


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


def test_the_allow_list_opens_cidrs_and_host_names_but_never_metadata() -> None:
    policy = AddressPolicy(["127.0.0.1/32", "intranet.example", "0.0.0.0/0"])
    loopback = ipaddress.ip_address("127.0.0.1")
    policy.check_addresses(parse_target("http://127.0.0.1:8080/"), [loopback])
    policy.check_addresses(parse_target("http://intranet.example/"), [ipaddress.ip_address("10.0.0.5")])
    with pytest.raises(AddressRefused, match="never fetched"):
        policy.check_addresses(parse_target("http://x.example/"), [ipaddress.ip_address("169.254.169.254")])
    with pytest.raises(AddressRefused, match="cloud metadata host"):
        policy.check_host(parse_target("http://metadata.google.internal/computeMetadata/v1/"))


def test_one_refused_answer_refuses_the_host() -> None:
    policy = AddressPolicy([])
    answers = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.1")]
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.1.*fetch\.allow_addresses"):
        policy.check_addresses(parse_target("http://rebind.example/"), answers)


def test_a_cidr_allows_only_its_own_addresses() -> None:
    policy = AddressPolicy(["127.0.0.1/32"])
    with pytest.raises(AddressRefused, match="loopback"):
        policy.check_addresses(parse_target("http://127.0.0.2/"), [ipaddress.ip_address("127.0.0.2")])


@pytest.mark.parametrize(
    ("url", "host", "port", "request_target", "host_header"),
    [
        ("http://Example.COM", "example.com", 80, "/", "example.com"),
        ("https://example.com:8443/a/b?q=1#frag", "example.com", 8443, "/a/b?q=1", "example.com:8443"),
        ("http://[::1]:8080/x", "::1", 8080, "/x", "[::1]:8080"),
        ("https://bücher.example/", "xn--bcher-kva.example", 443, "/", "xn--bcher-kva.example"),
    ],
)
def test_urls_become_request_targets(url: str, host: str, port: int, request_target: str, host_header: str) -> None:
    target = parse_target(url)
    assert (target.host, target.port, target.request_target, target.host_header) == (
        host,
        port,
        request_target,
        host_header,
    )


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "http:///nohost", "http://x:99999/"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused):
        parse_target(url)
