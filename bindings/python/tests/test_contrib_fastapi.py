"""keyward.contrib.fastapi against the real FastAPI (TestClient over httpx): the
200/401/403/401 matrix through every credential style with exact counts, the OpenAPI
security schemes, stacking under the ASGI middleware, and the README's example."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import Depends, FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import keyward  # noqa: E402
from conftest import REPO  # noqa: E402
from contrib_matrix import Keys, Response, make_keys, run_matrix, styles  # noqa: E402
from keyward.contrib.fastapi import KeyRefused, init_app, require_key  # noqa: E402
from keyward.middleware import ASGIMiddleware  # noqa: E402


@pytest.fixture
def keys(store: keyward.Store, tmp_path: Path) -> Keys:
    return make_keys(store, tmp_path)


def make_app(store: keyward.Store) -> FastAPI:
    app = FastAPI()
    init_app(app, store)

    @app.get("/invoices")
    async def invoices(verdict: keyward.Verdict = Depends(require_key("invoices:read"))) -> dict[str, Any]:
        return {"owner": verdict.owner, "key_id": verdict.key_id}

    @app.get("/twice")
    def twice(a: keyward.Verdict = Depends(require_key()),
              b: keyward.Verdict = Depends(require_key("invoices:read"))) -> dict[str, Any]:
        return {"same": a is b}

    @app.get("/explicit")
    async def explicit(verdict: keyward.Verdict = Depends(require_key("other", store=store))) -> dict[str, Any]:
        return {"owner": verdict.owner}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def caller(client: TestClient, path: str) -> Any:
    def call(headers: dict[str, str]) -> Response:
        resp = client.get(path, headers=headers)
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.json()
    return call


def test_matrix_through_every_credential_style(keys: Keys) -> None:
    client = TestClient(make_app(keys.store))
    seen = run_matrix(caller(client, "/invoices"), keys)
    assert all(body == {"owner": "acct_valid", "key_id": keys.valid.id} for _, _, body in seen["valid"])
    with pytest.raises(keyward.CredentialError) as missing:
        keyward.extract_credential({})
    assert seen["missing"][0][2] == {"detail": missing.value.message}
    assert {b["detail"] for _, _, b in seen["revoked"]} == {keyward.Reason.REVOKED.message}
    assert {b["detail"] for _, _, b in seen["lacking"]} == {keyward.Reason.INSUFFICIENT_SCOPE.message}
    assert "insufficient_scope" in seen["lacking"][0][1]["www-authenticate"]
    assert seen["lacking"][0][1]["cache-control"] == "no-store"
    assert client.get("/health").status_code == 200


def test_one_use_with_two_dependencies_and_an_explicit_store(keys: Keys) -> None:
    client = TestClient(make_app(keys.store))
    before = keys.store.usage(keys.valid.id).uses
    for style in styles(keys.valid.key).values():
        assert client.get("/twice", headers=style).json() == {"same": True}
        assert client.get("/explicit", headers=style).json() == {"owner": "acct_valid"}
    keys.store.flush()
    assert keys.store.usage(keys.valid.id).uses == before + 8
    resp = client.get("/twice", headers={"X-API-Key": keys.lacking.key})
    assert resp.status_code == 403  # the second dependency's scope, checked on the record


def test_openapi_declares_the_security_schemes(keys: Keys) -> None:
    client = TestClient(make_app(keys.store))
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["KeywardApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                        "description": schemes["KeywardApiKey"]["description"]}
    assert schemes["KeywardBearer"]["type"] == "http" and schemes["KeywardBearer"]["scheme"] == "bearer"
    # Alternatives (either one), on the protected operations only.
    assert spec["paths"]["/invoices"]["get"]["security"] == [{"KeywardApiKey": []}, {"KeywardBearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
    assert client.get("/docs").status_code == 200


def test_stacked_under_the_asgi_middleware(keys: Keys) -> None:
    inner = make_app(keys.store)
    client = TestClient(ASGIMiddleware(inner, store=keys.store, scopes={"/health": None, "/openapi.json": None}))
    # The middleware verifies (and counts) once; the dependency reuses its verdict and
    # still refuses the missing scope.
    seen = run_matrix(caller(client, "/invoices"), keys)
    assert seen["revoked"][0][2]["code"] == "REVOKED"  # the middleware's own body
    assert seen["lacking"][0][2] == {"detail": keyward.Reason.INSUFFICIENT_SCOPE.message}


def test_refusal_carries_the_code_and_misconfiguration_is_loud(keys: Keys) -> None:
    app = make_app(keys.store)
    codes: list[str] = []

    @app.exception_handler(KeyRefused)
    async def handler(request: Any, exc: KeyRefused) -> Any:
        from fastapi.responses import Response as Raw
        codes.append(exc.code)
        return Raw(exc.outcome.body(), status_code=exc.status_code, headers=exc.headers, media_type="application/json")

    client = TestClient(app)
    resp = client.get("/invoices", headers={"X-API-Key": keys.revoked.key})
    assert resp.status_code == 401 and resp.json() == {"ok": False, "code": "REVOKED", "message": keyward.Reason.REVOKED.message}
    assert codes == ["REVOKED"]
    bare = FastAPI()

    @bare.get("/x")
    async def x(v: keyward.Verdict = Depends(require_key())) -> None:
        return None

    with pytest.raises(RuntimeError, match="init_app"):
        TestClient(bare).get("/x", headers={"X-API-Key": keys.valid.key})
    with pytest.raises(TypeError):
        require_key(1)  # type: ignore[arg-type]


def test_readme_example(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n### FastAPI\n")
    block = re.findall(r"```python\n(.*?)```", text[start:text.find("\n### ", start + 1)], re.S)[0]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, Any] = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
        store = namespace["store"]
        key = store.create("acct_42", scopes=["invoices:read"]).key
        client = TestClient(namespace["app"])
        assert client.get("/invoices", headers={"X-API-Key": key}).json() == {"owner": "acct_42"}
        assert client.get("/invoices").status_code == 401
        assert "KeywardApiKey" in client.get("/openapi.json").json()["components"]["securitySchemes"]
        store.close()
    finally:
        os.chdir(cwd)


def test_rate_limited_key_fields_and_429(store: keyward.Store) -> None:
    created = store.create("acct_rl", scopes=["invoices:read"], rate_limit=keyward.RateLimit(1, 60_000, 1))
    client = TestClient(make_app(store))
    resp = client.get("/invoices", headers={"x-api-key": created.key})
    assert resp.status_code == 200
    assert resp.headers["RateLimit-Policy"] == '"key";q=1;w=60'
    assert resp.headers["RateLimit"] == '"key";r=0;t=60'
    resp = client.get("/invoices", headers={"x-api-key": created.key})
    assert resp.status_code == 429 and resp.json()["detail"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
