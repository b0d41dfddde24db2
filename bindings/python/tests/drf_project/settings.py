"""Settings of the tiny project. The store path comes from $KEYWARD_TEST_STORE."""
from __future__ import annotations

import os

SECRET_KEY = "keyward-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "drf_project.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "keyward.contrib.drf",
]
MIDDLEWARE: list[str] = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

KEYWARD = {
    "STORE": os.environ.get("KEYWARD_TEST_STORE", "/nonexistent/keyward-test-store-unset.redb"),
    "USER_FOR_OWNER": None,  # request.user is a keyward.contrib.drf.KeyOwner
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["keyward.contrib.drf.KeywardAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
