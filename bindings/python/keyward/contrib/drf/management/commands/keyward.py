"""``python manage.py keyward create|list|revoke``: manage the keys of ``settings.KEYWARD``'s store."""
from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from keyward import KeyInfo, KeywardError
from keyward.contrib.drf.auth import get_store


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Command(BaseCommand):  # type: ignore[misc]
    help = "Create, list and revoke the API keys of settings.KEYWARD's store."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it (shown this once)")
        create.add_argument("owner", help="account or user the key belongs to")
        create.add_argument("--scope", action="append", default=[], help="a scope to grant (repeatable)")
        create.add_argument("--name", default=None, help="a human name")
        create.add_argument("--env", default=None, help="env tag written into the key, e.g. live, test")
        create.add_argument("--key-only", action="store_true", help="print the key alone (for scripts)")
        listing = sub.add_parser("list", help="list keys (id, owner, state, scopes, name, created)")
        listing.add_argument("owner", nargs="?", help="only this owner's keys")
        revoke = sub.add_parser("revoke", help="revoke a key for good")
        revoke.add_argument("key_id")
        revoke.add_argument("--reason", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        store = get_store()
        try:
            action = options["action"]
            if action == "create":
                created = store.create(
                    options["owner"], scopes=options["scope"], name=options["name"], env=options["env"]
                )
                if not options["key_only"]:
                    scopes = ", ".join(created.info.scopes) or "none"
                    self.stdout.write(f"created {created.id} for {created.info.owner} (scopes: {scopes})")
                    self.stdout.write("the key, shown this once:")
                self.stdout.write(created.key)
            elif action == "list":
                keys = list(store.iter_keys(options["owner"])) if options["owner"] else store.all_keys()
                for info in keys:
                    self.stdout.write(self._row(info))
            else:
                info = store.revoke(options["key_id"], options["reason"])
                self.stdout.write(f"revoked {info.id} ({info.owner})")
        except KeywardError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            store.flush()

    @staticmethod
    def _row(info: KeyInfo) -> str:
        now = int(time.time() * 1000)
        state = "revoked" if info.revoked_at is not None else ("active" if info.active_at(now) else "expired")
        return "\t".join([info.id, info.owner, state, ",".join(info.scopes) or "-", info.name or "-", _when(info.created_at)])
