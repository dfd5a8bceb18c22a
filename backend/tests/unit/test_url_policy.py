"""url_policy: which addresses an admin-entered R2R URL may use (pure, resolver injected)."""

from __future__ import annotations

import pytest

from onyx.r2r_sender.errors import BridgeError, CredentialError
from onyx.r2r_sender.url_policy import (
    InvalidUrlError,
    UrlNotAllowedError,
    UrlPolicy,
    validate_base_url,
)


def resolver_for(mapping: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError(-2, "Name or service not known")
        return mapping[host]

    return resolve


RESOLVE = resolver_for(
    {
        "r2r": ["172.18.0.5"],
        "r2r.example.com": ["93.184.216.34"],
        "localhost": ["127.0.0.1", "::1"],
        "evil.example.com": ["169.254.169.254"],
        "sneaky.example.com": ["93.184.216.34", "fe80::1"],
        "alibaba.example.com": ["100.100.100.200"],
    }
)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://r2r:7272", "http://r2r:7272"),
        ("http://r2r:7272/", "http://r2r:7272"),
        ("https://r2r.example.com/r2r/", "https://r2r.example.com/r2r"),
        ("http://127.0.0.1:7272", "http://127.0.0.1:7272"),
        ("http://localhost:7272", "http://localhost:7272"),
        ("http://[::1]:7272", "http://[::1]:7272"),
        ("  http://10.0.0.8:7272  ", "http://10.0.0.8:7272"),
    ],
)
def test_allowed_urls_under_the_default_policy(url: str, expected: str) -> None:
    assert validate_base_url(url, policy=UrlPolicy.PRIVATE, resolver=RESOLVE) == expected


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("", "Enter the R2R server's URL"),
        ("r2r:7272", "http:// or https://"),
        ("ftp://r2r:7272", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://admin:secret@r2r:7272", "must not contain a user name or password"),
        ("http://user@r2r:7272", "must not contain a user name or password"),
        ("http://r2r:7272/?x=1", "query string"),
        ("http://r2r:7272/#frag", "query string"),
        ("http://r2r:notaport", "not valid"),
        ("http:///v3", "no host name"),
        ("http://r2r 7272", "spaces"),
        ("http://unknown-host:7272", "could not be resolved"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, fragment: str) -> None:
    with pytest.raises(InvalidUrlError) as err:
        validate_base_url(url, policy=UrlPolicy.PRIVATE, resolver=RESOLVE)
    assert fragment in str(err.value)
    assert "secret" not in str(err.value)


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://169.254.170.2", "cloud metadata"),
        ("http://169.254.1.1:7272", "link-local"),
        ("http://[fe80::1]:7272", "link-local"),
        ("http://[::ffff:169.254.169.254]", "cloud metadata"),
        ("http://[fd00:ec2::254]", "cloud metadata"),
        ("http://100.100.100.200", "cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1", "cloud metadata service"),
        ("http://METADATA.GOOGLE.INTERNAL.", "cloud metadata service"),
        ("http://evil.example.com", "cloud metadata"),
        ("http://sneaky.example.com", "link-local"),
        ("http://alibaba.example.com", "cloud metadata"),
        ("http://0.0.0.0:7272", "not a usable server address"),
        ("http://224.0.0.1", "not a usable server address"),
    ],
)
def test_metadata_and_link_local_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(UrlNotAllowedError) as err:
        validate_base_url(url, policy=UrlPolicy.PRIVATE, resolver=RESOLVE)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:7272", "http://localhost:7272", "http://r2r:7272", "http://10.1.2.3"]
)
def test_public_policy_refuses_private_and_loopback(url: str) -> None:
    with pytest.raises(UrlNotAllowedError, match="ONYX_R2R_URL_POLICY=private"):
        validate_base_url(url, policy=UrlPolicy.PUBLIC, resolver=RESOLVE)
    assert validate_base_url("https://r2r.example.com", policy=UrlPolicy.PUBLIC, resolver=RESOLVE)


def test_any_policy_allows_link_local_deliberately() -> None:
    assert validate_base_url("http://169.254.10.10:7272", policy=UrlPolicy.ANY)


def test_policy_from_env() -> None:
    assert UrlPolicy.from_env({}) is UrlPolicy.PRIVATE
    assert UrlPolicy.from_env({"ONYX_R2R_URL_POLICY": "PUBLIC"}) is UrlPolicy.PUBLIC
    with pytest.raises(InvalidUrlError, match="public, private, any"):
        UrlPolicy.from_env({"ONYX_R2R_URL_POLICY": "everything"})


def test_url_errors_are_credential_errors_of_the_engine_root() -> None:
    assert issubclass(UrlNotAllowedError, InvalidUrlError)
    assert issubclass(InvalidUrlError, CredentialError) and issubclass(InvalidUrlError, BridgeError)
    assert (InvalidUrlError("x").code, UrlNotAllowedError("x").code) == (
        "invalid_url",
        "url_not_allowed",
    )
