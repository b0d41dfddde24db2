"""keyward.contrib.drf against the real Django REST framework: Django's test client
(settings from tests/drf_project, an in-memory sqlite database), the stacked WSGI
middleware, the management command, the README's example, and gunicorn over HTTP."""
from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")
pytest.importorskip("rest_framework")

import django  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drf_project.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

import keyward  # noqa: E402
from conftest import HERE, REPO  # noqa: E402
from contrib_matrix import Keys, Response, counts, make_keys, run_matrix, styles  # noqa: E402
from keyward.middleware import WSGIMiddleware  # noqa: E402


@pytest.fixture
def keys(store: keyward.Store, tmp_path: Path) -> Keys:
    return make_keys(store, tmp_path)


@pytest.fixture
def configured(store_path: str, keys: Keys) -> Iterator[None]:
    with override_settings(KEYWARD={"STORE": store_path, "USER_FOR_OWNER": None}):
        yield


def get(path: str, headers: dict[str, str]) -> Response:
    resp = Client().get(path, headers=headers)
    return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.content)


def test_matrix_through_every_credential_style(configured: None, keys: Keys) -> None:
    seen = run_matrix(lambda h: get("/invoices", h), keys)
    for status, _, body in seen["valid"]:
        assert body["owner"] == body["user"] == "acct_valid" and body["key_id"] == keys.valid.id
    # DRF's bodies: {"detail": ...} and nothing else.
    assert seen["missing"][0][2] == {"detail": "Authentication credentials were not provided."}
    assert {b["detail"] for _, _, b in seen["unknown"]} == {keyward.Reason.NOT_FOUND.message}
    assert {b["detail"] for _, _, b in seen["revoked"]} == {keyward.Reason.REVOKED.message}
    assert {b["detail"] for _, _, b in seen["lacking"]} == {keyward.Reason.INSUFFICIENT_SCOPE.message}
    assert all(set(b) == {"detail"} for responses in seen.values() for s, _, b in responses if s != 200)
    assert seen["unknown"][0][1]["www-authenticate"] == 'Bearer realm="api"'


def test_any_valid_key_and_other_schemes(configured: None, keys: Keys) -> None:
    assert get("/any", {"X-API-Key": keys.lacking.key})[0] == 200  # HasScopes(): any valid key
    # Not a keyward credential (DRF's Token, djangorestframework-api-key's Api-Key scheme):
    # left to other authentication classes, so here "not provided".
    for value in ("Token abc", "Api-Key abc.def"):
        status, headers, body = get("/invoices", {"Authorization": value})
        assert (status, body) == (401, {"detail": "Authentication credentials were not provided."})
    with pytest.raises(keyward.CredentialError) as bad:
        keyward.extract_credential({"Authorization": "Basic !!!"})
    assert get("/invoices", {"Authorization": "Basic !!!"})[:3:2] == (401, {"detail": bad.value.message})
    assert get("/health", {})[0] == 200


def test_store_object_and_user_for_owner_hook(store: keyward.Store, keys: Keys) -> None:
    from django.contrib.auth import get_user_model

    call_command("migrate", verbosity=0, interactive=False)  # auth tables in the :memory: db
    get_user_model().objects.create(username="acct_valid")
    hook = types.ModuleType("kw_test_hooks")
    hook.user_for_owner = lambda owner: get_user_model().objects.filter(username=owner).first()  # type: ignore[attr-defined]
    sys.modules["kw_test_hooks"] = hook
    try:
        with override_settings(KEYWARD={"STORE": store, "USER_FOR_OWNER": "kw_test_hooks.user_for_owner"}):
            status, _, body = get("/invoices", {"X-API-Key": keys.valid.key})
            assert (status, body["user"]) == (200, "acct_valid")
            status, _, body = get("/any", {"X-API-Key": keys.lacking.key})  # no such user
            assert (status, body) == (401, {"detail": "no user for this key's owner"})
    finally:
        del sys.modules["kw_test_hooks"]
    assert not store.closed  # a store given as an object is not closed by the settings reset


def test_stacked_under_the_wsgi_middleware(configured: None, keys: Keys) -> None:
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client as WSGIClient

    app = WSGIClient(WSGIMiddleware(get_wsgi_application(), keys.store, scopes={"/health": None}))

    def call(headers: dict[str, str]) -> Response:
        resp = app.get("/invoices", headers=headers)
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.get_json()

    # The outer middleware answers the 401s itself (its own body); DRF reuses its verdict
    # for the rest: one use per request, and the scope refusal still comes from HasScopes.
    seen = run_matrix(call, keys)
    assert seen["revoked"][0][2]["code"] == "REVOKED"
    assert seen["lacking"][0][2] == {"detail": keyward.Reason.INSUFFICIENT_SCOPE.message}


def test_management_command(configured: None, keys: Keys) -> None:
    out = io.StringIO()
    call_command("keyward", "create", "acct_cli", "--scope", "invoices:read", "--name", "ci", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("created ") and lines[0].endswith("for acct_cli (scopes: invoices:read)")
    key = lines[-1]
    key_id = lines[0].split()[1]
    assert get("/invoices", {"X-API-Key": key})[0] == 200
    out = io.StringIO()
    call_command("keyward", "create", "acct_cli", "--key-only", stdout=out)
    assert out.getvalue().startswith("kw_") and len(out.getvalue().splitlines()) == 1
    out = io.StringIO()
    call_command("keyward", "list", "acct_cli", stdout=out)
    rows = [line.split("\t") for line in out.getvalue().splitlines()]
    assert len(rows) == 2 and rows[0][:5] == [key_id, "acct_cli", "active", "invoices:read", "ci"]
    out = io.StringIO()
    call_command("keyward", "revoke", key_id, "--reason", "leaked", stdout=out)
    assert out.getvalue().strip() == f"revoked {key_id} (acct_cli)"
    assert get("/invoices", {"X-API-Key": key})[0] == 401
    out = io.StringIO()
    call_command("keyward", "list", stdout=out)
    states = {line.split("\t")[0]: line.split("\t")[2] for line in out.getvalue().splitlines()}
    assert states[key_id] == "revoked" and states[keys.revoked.id] == "revoked" and states[keys.valid.id] == "active"
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="NOT_FOUND|not found"):
        call_command("keyward", "revoke", "nosuchkey", stdout=io.StringIO())


# --- the README's example ---------------------------------------------------------------------


def readme_blocks(heading: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n### {heading}\n")
    end = text.find("\n### ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def test_readme_example(store_path: str, keys: Keys) -> None:
    settings_block, hook_block, views_block = readme_blocks("Django REST framework")[:3]
    conf: dict[str, Any] = {}
    exec(compile(settings_block, "README.md", "exec"), conf)  # noqa: S102 - our own README
    assert "keyward.contrib.drf" in conf["INSTALLED_APPS"] and "rest_framework" in conf["INSTALLED_APPS"]
    assert conf["REST_FRAMEWORK"]["DEFAULT_AUTHENTICATION_CLASSES"] == ["keyward.contrib.drf.KeywardAuthentication"]
    hook = types.ModuleType("myapp_auth_readme")
    exec(compile(hook_block, "README.md", "exec"), hook.__dict__)  # noqa: S102
    views = types.ModuleType("myapp_views_readme")
    exec(compile(views_block, "README.md", "exec"), views.__dict__)  # noqa: S102
    from django.contrib.auth import get_user_model
    from django.urls import path

    call_command("migrate", verbosity=0, interactive=False)
    for owner in ("acct_valid", "acct_lacking"):
        get_user_model().objects.get_or_create(username=owner)
    urls = types.ModuleType("myapp_urls_readme")
    urls.urlpatterns = [path("invoices", views.Invoices.as_view())]  # type: ignore[attr-defined]
    sys.modules["myapp_auth_readme"] = hook
    try:
        keyward_conf = dict(conf["KEYWARD"], STORE=store_path, USER_FOR_OWNER="myapp_auth_readme.user_for_owner")
        with override_settings(KEYWARD=keyward_conf, ROOT_URLCONF=urls):
            status, _, body = get("/invoices", styles(keys.valid.key)["bearer"])
            assert status == 200 and body["owner"] == "acct_valid" and body["user"] == "acct_valid"
            assert get("/invoices", styles(keys.lacking.key)["bearer"])[0] == 403
            assert get("/invoices", {})[0] == 401
    finally:
        del sys.modules["myapp_auth_readme"]


# --- gunicorn ---------------------------------------------------------------------------------


def test_gunicorn_two_workers(tmp_path: Path, store_path: str, keys: Keys) -> None:
    pytest.importorskip("gunicorn")
    keys.store.flush()
    log_path = tmp_path / "gunicorn.log"
    env = dict(os.environ, KEYWARD_TEST_STORE=store_path, DJANGO_SETTINGS_MODULE="drf_project.settings",
               PYTHONUNBUFFERED="1")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(HERE / "drf_project" / "gunicorn_conf.py"),
         "--pythonpath", str(HERE), "-b", "127.0.0.1:0", "drf_project.wsgi:application"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(HERE),
    )
    try:
        port = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            text = log_path.read_text(errors="replace")
            m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if m and text.count("Booting worker") >= 2:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
                    conn.request("GET", "/health")
                    if conn.getresponse().status == 200:
                        port = int(m.group(1))
                        break
                except OSError:
                    pass
                finally:
                    conn.close()
            time.sleep(0.1)
        assert port, log_path.read_text(errors="replace")

        def call(headers: dict[str, str]) -> Response:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", "/invoices", headers=headers)
                resp = conn.getresponse()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
            finally:
                conn.close()

        for _ in range(3):  # 3 × (1 + 4 styles × 4 keys) requests
            _statuses(call, keys)
        proc.send_signal(signal.SIGTERM)  # graceful: each worker closes (flushes) its store
        assert proc.wait(40) == 0, log_path.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    after = counts(keys)
    assert after["valid"] == (12, 0) and after["revoked"] == (0, 12), after
    assert sum(after["lacking"]) == 12, after


def _statuses(call: Any, keys: Keys) -> dict[str, list[Response]]:
    """The matrix's requests without its count check (the workers' counts reach the file
    only when they stop)."""
    expected = {"valid": 200, "unknown": 401, "lacking": 403, "revoked": 401}
    seen: dict[str, list[Response]] = {k: [] for k in expected}
    assert call({})[0] == 401
    for style in ("x-api-key", "bearer", "basic", "pair"):
        for case, key in (("valid", keys.valid.key), ("unknown", keys.unknown),
                          ("lacking", keys.lacking.key), ("revoked", keys.revoked.key)):
            response = call(styles(key)[style])
            assert response[0] == expected[case], (case, style, response)
            seen[case].append(response)
    return seen
