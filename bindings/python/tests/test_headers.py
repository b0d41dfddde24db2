"""Credential headers from every shape a framework hands over."""
from __future__ import annotations

import base64
from typing import Any

import pytest

import keyward
from keyward.headers import credential_headers

KEY = "kw_live_3hZ0bq9XcV1mT7pKQw8rT2yU4iO6pA1sD3fG5hJ7kL9zX0cV3oGDzY"


def test_dict_keeps_only_credential_headers() -> None:
    headers = {"Accept": "*/*", "X-Api-Key": KEY, "Cookie": "a=b", "Host": "x"}
    assert credential_headers(headers) == [(b"X-Api-Key", KEY.encode())]


def test_pairs_str_and_bytes() -> None:
    pairs: list[Any] = [("authorization", f"Bearer {KEY}"), (b"x-other", b"1"), (b"X-API-KEY", KEY.encode())]
    assert credential_headers(pairs) == [(b"authorization", f"Bearer {KEY}".encode()), (b"X-API-KEY", KEY.encode())]


def test_names_with_surrounding_whitespace_are_kept() -> None:
    assert credential_headers([(" x-api-key\t", KEY)]) == [(b" x-api-key\t", KEY.encode())]


def test_repeated_values_in_a_dict_of_lists() -> None:
    headers = {"x-api-key": [KEY, KEY], "accept": ["a", "b"]}
    assert credential_headers(headers) == [(b"x-api-key", KEY.encode())] * 2
    assert keyward.extract_credential(headers).key == KEY  # the same key twice is fine


def test_wsgi_environ() -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "wsgi.version": (1, 0),
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(KEY.encode()).decode(),
        "HTTP_ACCEPT": "*/*",
        "CONTENT_TYPE": "text/plain",
    }
    assert [n for n, _ in credential_headers(environ)] == [b"authorization"]
    assert keyward.extract_credential(environ).key == KEY
    pair_env = {"REQUEST_METHOD": "GET", "HTTP_X_API_TOKEN_ID": "3hZ0bq9XcV1mT7pK",
                "HTTP_X_API_TOKEN_SECRET_KEY": "Qw8rT2yU4iO6pA1sD3fG5hJ7kL9zX0cV"}
    cred = keyward.extract_credential(pair_env)
    assert (cred.kind, cred.id) == ("pair", "3hZ0bq9XcV1mT7pK")


def test_wsgi_environ_values_are_latin1_native_strings() -> None:
    raw = b"Basic " + base64.b64encode(b"\xff\xfe")
    environ = {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": raw.decode("latin-1")}
    with pytest.raises(keyward.CredentialError) as info:
        keyward.extract_credential(environ)
    assert info.value.code == "BAD_BASE64"
    # The bytes 0xff 0xfe, as sent (not UTF-8: read with U+FFFD, never an argument error).
    environ = {"REQUEST_METHOD": "GET", "HTTP_X_API_KEY": "\u00ff\u00fe"}
    assert keyward.extract_credential(environ).key == "\ufffd\ufffd"


def test_asgi_scope() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"host", b"x"), (b"authorization", b"Bearer " + KEY.encode()), (b"accept", b"*/*")],
    }
    assert credential_headers(scope) == [(b"authorization", b"Bearer " + KEY.encode())]
    assert keyward.extract_credential(scope).key == KEY


def test_headers_objects_with_items() -> None:
    class Headers:  # like starlette.datastructures.Headers or werkzeug Headers
        def __init__(self, raw: list[tuple[str, str]]) -> None:
            self._raw = raw

        def items(self) -> list[tuple[str, str]]:
            return list(self._raw)

    h = Headers([("x-api-key", KEY), ("authorization", "Bearer " + KEY)])
    assert keyward.extract_credential(h).key == KEY
    import email.message

    msg = email.message.Message()
    msg["X-Api-Key"] = KEY
    assert keyward.extract_credential(msg).key == KEY


def test_non_latin1_str_is_sent_as_utf8() -> None:
    assert credential_headers({"x-api-key": "k\u20ac"}) == [(b"x-api-key", "k\u20ac".encode())]


@pytest.mark.parametrize("bad", [None, 42, "x-api-key", b"x-api-key", [("a", "b", "c")], [42], {"x-api-key": 3}, {1: "x"}])
def test_bad_shapes_are_type_errors(bad: Any) -> None:
    with pytest.raises(TypeError):
        credential_headers(bad)


def test_no_credential_at_all() -> None:
    assert credential_headers([]) == []
    assert credential_headers({}) == []
    with pytest.raises(keyward.CredentialError) as info:
        keyward.extract_credential({"accept": "*/*"})
    assert info.value.code == "CREDENTIAL_MISSING"
