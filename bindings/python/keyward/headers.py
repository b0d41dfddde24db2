"""Reading the credential headers out of whatever a web framework hands over.

:func:`credential_headers` accepts

- a mapping of header name → value (``dict``, Starlette/Werkzeug ``Headers``,
  ``http.client.HTTPMessage``: anything with ``items()``), values ``str``, ``bytes`` or a
  list of those for repeated headers;
- an iterable of ``(name, value)`` pairs (``str`` or ``bytes``);
- a WSGI environ (a mapping with ``REQUEST_METHOD`` or ``wsgi.version``): the ``HTTP_*`` keys;
- an ASGI connection scope (a mapping with ``type`` and ``headers``): its raw headers
  (``bytes`` names matched as the ASGI spec sends them, lower-case).

Only the four credential headers (``x-api-key``, ``authorization``, ``x-api-token-id``,
``x-api-token-secret-key``, any case) are kept: the C ABI accepts "every request header, or
just the credential ones", and passing the few that matter is cheaper. ``str`` values are
encoded as ISO-8859-1 (how WSGI and ASGI frameworks decode header bytes, so the original
bytes come back), or as UTF-8 when they hold characters beyond it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Union

__all__ = ["CREDENTIAL_HEADERS", "HeaderSource", "asgi_credentials", "credential_headers", "wsgi_credentials"]

#: Lower-case names of the headers keyward reads a credential from.
CREDENTIAL_HEADERS: frozenset[str] = frozenset(
    {"x-api-key", "authorization", "x-api-token-id", "x-api-token-secret-key"}
)
_CREDENTIAL_BYTES = frozenset(n.encode() for n in CREDENTIAL_HEADERS)
_WSGI_KEYS = tuple(("HTTP_" + n.upper().replace("-", "_"), n.encode()) for n in sorted(CREDENTIAL_HEADERS))

HeaderValue = Union[str, bytes]
#: What :func:`credential_headers` (and ``Store.verify_headers``) accept.
HeaderSource = Union[
    Mapping[Any, Any],
    Iterable[tuple[HeaderValue, HeaderValue]],
]


def _bytes(value: Any, what: str) -> bytes:
    t = type(value)
    if t is str:
        try:
            return value.encode("latin-1")  # type: ignore[no-any-return]
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")  # type: ignore[no-any-return]
    if t is bytes:
        return value  # type: ignore[no-any-return]
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"header {what} must be str or bytes, not {type(value).__name__}")


def _is_credential(name: bytes) -> bool:
    if name in _CREDENTIAL_BYTES:
        return True
    return name.strip(b" \t").lower() in _CREDENTIAL_BYTES


def _pairs(items: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(
                f"headers must be (name, value) pairs, got {type(item).__name__}"
            ) from None
        raw_name = _bytes(name, "name")
        if not _is_credential(raw_name):
            continue
        if isinstance(value, (list, tuple)):
            out.extend((raw_name, _bytes(v, "value")) for v in value)
        else:
            out.append((raw_name, _bytes(value, "value")))
    return out


def wsgi_credentials(environ: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """The credential headers of a WSGI environ (its ``HTTP_*`` keys), as
    :func:`credential_headers` returns them: four lookups, nothing else read."""
    get = environ.get
    key = get("HTTP_X_API_KEY")
    authorization = get("HTTP_AUTHORIZATION")
    if get("HTTP_X_API_TOKEN_ID") is None and get("HTTP_X_API_TOKEN_SECRET_KEY") is None:
        # The usual request: one header; str values encoded here, without a call.
        if authorization is None and type(key) is str and key.isascii():
            return [(b"x-api-key", key.encode())]
        if key is None and type(authorization) is str and authorization.isascii():
            return [(b"authorization", authorization.encode())]
    out = []
    for env_key, name in _WSGI_KEYS:
        value = get(env_key)
        if value is not None:
            out.append((name, _bytes(value, "value")))
    return out


def asgi_credentials(scope: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """The credential headers of an ASGI connection scope (its raw ``headers``), as
    :func:`credential_headers` returns them. Header names are matched as the ASGI spec
    sends them, lower-case (a ``str`` name or value is converted as in other sources)."""
    out = []
    for item in scope["headers"]:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(f"headers must be (name, value) pairs, got {type(item).__name__}") from None
        if type(name) is bytes and type(value) is bytes:  # what ASGI servers send
            # The ASGI spec lower-cases header names: an exact match, no per-header work.
            if name in _CREDENTIAL_BYTES:
                out.append((name, value))
        else:
            out.extend(_pairs((item,)))
    return out


def credential_headers(source: HeaderSource) -> list[tuple[bytes, bytes]]:
    """The credential headers of ``source`` as ``(name, value)`` byte pairs, in order.

    Raises ``TypeError`` for anything that is not one of the accepted shapes.
    """
    if type(source) is dict and "headers" not in source and "REQUEST_METHOD" not in source \
            and "wsgi.version" not in source:
        return _pairs(source.items())  # a plain dict of headers: the common case, no ABC checks
    if isinstance(source, Mapping) or hasattr(source, "items"):
        if isinstance(source, Mapping):
            if "headers" in source and "type" in source:  # ASGI scope
                return asgi_credentials(source)
            if "REQUEST_METHOD" in source or "wsgi.version" in source:  # WSGI environ
                return wsgi_credentials(source)
        items = source.items()
        return _pairs(items)
    if isinstance(source, (str, bytes)):
        raise TypeError("headers must be a mapping or (name, value) pairs, not a string")
    try:
        iterator = iter(source)
    except TypeError:
        raise TypeError(
            f"headers must be a mapping or (name, value) pairs, not {type(source).__name__}"
        ) from None
    return _pairs(iterator)
