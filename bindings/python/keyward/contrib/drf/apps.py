"""The Django app of :mod:`keyward.contrib.drf` (label ``keyward``)."""
from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


def _setting_changed(*, setting: str, **_: Any) -> None:
    if setting == "KEYWARD":
        from .auth import _reset

        _reset()


class KeywardConfig(AppConfig):  # type: ignore[misc]
    name = "keyward.contrib.drf"
    label = "keyward"
    verbose_name = "keyward API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        setting_changed.connect(_setting_changed, dispatch_uid="keyward.contrib.drf.setting_changed")
