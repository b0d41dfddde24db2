"""One binding path run N times, for benches/instructions/run.sh (instructions per request
under callgrind: the difference between two values of N cancels start-up).

  python3 py_driver.py setup STORE KEYFILE         create the store and 64 keys (scope "read")
  python3 py_driver.py PATH STORE KEYFILE N        run PATH N times

PATH: wsgi-noauth / wsgi (WSGIMiddleware, scope "read") / wsgi-stacked (two of them),
asgi-noauth / asgi (ASGIMiddleware) / asgi-stacked, verify (Store.verify(key, ("read",))),
verify-headers (Store.verify_headers(environ, ("read",))).
The environ and scope are shaped as gunicorn and uvicorn build them (all request headers).
"""
from __future__ import annotations

import sys

import keyward
from keyward.middleware import ASGIMiddleware, WSGIMiddleware

BODY = b'{"ok":true}'
HEADERS = [("content-type", "application/json"), ("content-length", "11")]


def open_store(path: str) -> keyward.Store:
    # No background flush: its thread would add instructions in proportion to wall time.
    return keyward.Store(path, flush_interval_ms=keyward.FLUSH_MANUAL)


def setup(path: str, keyfile: str) -> None:
    with open_store(path) as store, open(keyfile, "w") as f:
        for i in range(64):
            f.write(store.create(owner=f"o{i}", scopes=["read"]).key + "\n")


def environ(key: str) -> dict:
    return {
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "REQUEST_METHOD": "GET", "QUERY_STRING": "", "RAW_URI": "/keyward", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:18101", "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*",
        "HTTP_X_API_KEY": key, "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "18101", "PATH_INFO": "/keyward", "SCRIPT_NAME": "",
    }


def scope(key: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "server": ("127.0.0.1", 18102), "client": ("127.0.0.1", 50000), "scheme": "http",
        "method": "GET", "root_path": "", "path": "/keyward", "raw_path": b"/keyward", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:18102"), (b"user-agent", b"wrk"), (b"accept", b"*/*"),
                    (b"x-api-key", key.encode())],
        "state": {},
    }


def start_response(status: str, headers: list, exc_info: object = None) -> None:
    pass


def hello(environ: dict, start_response: object) -> list:
    start_response("200 OK", HEADERS)  # type: ignore[operator]
    return [BODY]


async def ahello(scope: dict, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]


async def asend(message: object) -> None:
    pass


async def areceive() -> dict:
    return {"type": "http.request"}


def drive(coro: object) -> None:
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration:
        return
    raise RuntimeError("the ASGI app awaited something that does not complete at once")


def main() -> None:
    if sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3])
        return
    path, store_path, keyfile, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    keys = open(keyfile).read().split()
    store = open_store(store_path)
    envs = [environ(k) for k in keys]
    scopes = [scope(k) for k in keys]
    if path == "wsgi-noauth":
        app = hello
    elif path == "wsgi":
        app = WSGIMiddleware(hello, store, scopes=["read"])
    elif path == "wsgi-stacked":
        app = WSGIMiddleware(WSGIMiddleware(hello, store, scopes=["read"]), store, scopes=["read"])
    elif path.startswith("asgi"):
        aapp = {"asgi-noauth": ahello,
                "asgi": ASGIMiddleware(ahello, store, scopes=["read"]),
                "asgi-stacked": ASGIMiddleware(ASGIMiddleware(ahello, store, scopes=["read"]), store, scopes=["read"]),
                }[path]
        m = len(scopes)
        for i in range(n):
            s = dict(scopes[i % m])  # servers build a new scope per request
            drive(aapp(s, areceive, asend))
        store.close()
        return
    elif path == "verify":
        m = len(keys)
        for i in range(n):
            assert store.verify(keys[i % m], ("read",)).ok
        store.close()
        return
    elif path == "verify-headers":
        m = len(envs)
        for i in range(n):
            assert store.verify_headers(dict(envs[i % m]), ("read",)).ok
        store.close()
        return
    else:
        raise SystemExit(f"unknown path {path}")
    m = len(envs)
    for i in range(n):
        e = dict(envs[i % m])  # servers build a new environ per request
        for chunk in app(e, start_response):
            pass
    store.close()


if __name__ == "__main__":
    main()
