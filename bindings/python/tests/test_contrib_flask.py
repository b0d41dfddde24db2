"""keyward.contrib.flask against the real Flask (its test client): the 200/401/403/401
matrix through every credential style with exact counts, stacking under the WSGI
middleware, and the README's example."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask")

from flask import Flask, g  # noqa: E402

import keyward  # noqa: E402
from conftest import REPO  # noqa: E402
from contrib_matrix import Keys, Response, make_keys, run_matrix, styles  # noqa: E402
from keyward.contrib.flask import init_app, require_key  # noqa: E402
from keyward.middleware import WSGIMiddleware  # noqa: E402


@pytest.fixture
def keys(store: keyward.Store, tmp_path: Path) -> Keys:
    return make_keys(store, tmp_path)


def make_app(store: keyward.Store) -> Flask:
    app = Flask(__name__)
    init_app(app, store)

    @app.get("/invoices")
    @require_key("invoices:read")
    def invoices() -> dict[str, Any]:
        return {"owner": g.keyward.owner, "key_id": g.keyward.key_id}

    @app.get("/bare")
    @require_key
    def bare() -> dict[str, Any]:
        return {"owner": g.keyward.owner}

    @app.get("/twice")
    @require_key()
    @require_key("invoices:read", store=store)
    async def twice() -> dict[str, Any]:  # an async view works too
        return {"owner": g.keyward.owner}

    return app


def caller(app: Any, path: str) -> Any:
    client = app.test_client() if isinstance(app, Flask) else None

    def call(headers: dict[str, str]) -> Response:
        if client is not None:
            resp = client.get(path, headers=headers)
        else:
            from werkzeug.test import Client
            resp = Client(app).get(path, headers=headers)
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.get_json()
    return call


def test_matrix_through_every_credential_style(keys: Keys) -> None:
    seen = run_matrix(caller(make_app(keys.store), "/invoices"), keys)
    assert all(body == {"owner": "acct_valid", "key_id": keys.valid.id} for _, _, body in seen["valid"])
    # The middleware's body, as is.
    assert seen["missing"][0][2]["code"] == "CREDENTIAL_MISSING"
    assert {b["code"] for _, _, b in seen["unknown"]} == {"NOT_FOUND"}
    assert {b["code"] for _, _, b in seen["revoked"]} == {"REVOKED"}
    assert {b["code"] for _, _, b in seen["lacking"]} == {"INSUFFICIENT_SCOPE"}
    assert seen["lacking"][0][2] == {"ok": False, "code": "INSUFFICIENT_SCOPE", "message": keyward.Reason.INSUFFICIENT_SCOPE.message}
    assert seen["lacking"][0][1]["content-type"] == "application/json"


def test_bare_decorator_and_two_decorators_count_once(keys: Keys) -> None:
    call = caller(make_app(keys.store), "/twice")
    before = keys.store.usage(keys.valid.id).uses
    for style in styles(keys.valid.key).values():
        assert call(style)[:3:2] == (200, {"owner": "acct_valid"})
    assert caller(make_app(keys.store), "/bare")({"X-API-Key": keys.lacking.key})[0] == 200
    keys.store.flush()
    assert keys.store.usage(keys.valid.id).uses == before + 4
    assert call({"X-API-Key": keys.lacking.key})[0] == 403


def test_stacked_under_the_wsgi_middleware(keys: Keys) -> None:
    app = make_app(keys.store)
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, keys.store)  # type: ignore[method-assign]
    seen = run_matrix(caller(app, "/invoices"), keys)
    assert seen["lacking"][0][2]["code"] == "INSUFFICIENT_SCOPE"


def test_misconfiguration_is_loud(keys: Keys) -> None:
    app = Flask(__name__)

    @app.get("/x")
    @require_key()
    def x() -> str:
        return "x"

    app.testing = True
    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().get("/x", headers={"X-API-Key": keys.valid.key})
    with pytest.raises(TypeError):
        init_app(app, "keys.redb")  # type: ignore[arg-type]


def test_readme_example(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n### Flask\n")
    block = re.findall(r"```python\n(.*?)```", text[start:text.find("\n### ", start + 1)], re.S)[0]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, Any] = {"__name__": "readme_flask"}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
        store = namespace["store"]
        key = store.create("acct_42", scopes=["invoices:read"]).key
        client = namespace["app"].test_client()
        assert client.get("/invoices", headers={"Authorization": f"Bearer {key}"}).get_json() == {"owner": "acct_42"}
        assert client.get("/invoices").status_code == 401
        store.close()
    finally:
        os.chdir(cwd)


def test_rate_limited_key_fields_and_429(store: keyward.Store) -> None:
    created = store.create("acct_rl", scopes=["invoices:read"], rate_limit=keyward.RateLimit(1, 60_000, 1))
    client = make_app(store).test_client()
    resp = client.get("/invoices", headers={"x-api-key": created.key})
    assert resp.status_code == 200
    assert resp.headers["RateLimit-Policy"] == '"key";q=1;w=60'
    assert resp.headers["RateLimit"] == '"key";r=0;t=60'
    resp = client.get("/invoices", headers={"x-api-key": created.key})
    assert resp.status_code == 429 and resp.get_json()["code"] == "RATE_LIMITED"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
