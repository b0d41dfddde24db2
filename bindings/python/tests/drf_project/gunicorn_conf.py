"""gunicorn settings of the DRF server test: 2 workers; each closes its store on exit."""
from __future__ import annotations

from typing import Any

workers = 2
worker_class = "sync"
graceful_timeout = 20
timeout = 30


def worker_exit(server: Any, worker: Any) -> None:
    from keyward.contrib.drf import close_store

    close_store()  # flushes this worker's usage counts
