"""gunicorn settings of test_server.py (and the pattern the README's Python section shows)."""
from __future__ import annotations

from typing import Any

workers = 4
worker_class = "sync"
graceful_timeout = 20
timeout = 30


def worker_exit(server: Any, worker: Any) -> None:
    # Flush this worker's usage counts before it goes.
    import server_app

    server_app.store.close()
