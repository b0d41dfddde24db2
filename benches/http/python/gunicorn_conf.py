"""gunicorn settings (the README's pattern): 4 sync workers; each closes the store when it
exits, which writes its last usage counts."""
workers = 4
worker_class = "sync"
graceful_timeout = 20
timeout = 30
accesslog = None
loglevel = "warning"


def worker_exit(server, worker):  # noqa: ANN001 - gunicorn's hook signature
    import wsgi_app

    wsgi_app.store.close()
