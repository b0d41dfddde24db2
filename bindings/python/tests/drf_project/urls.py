from __future__ import annotations

import os
from typing import Any

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from keyward.contrib.drf import HasScopes


class Invoices(APIView):
    permission_classes = [HasScopes("invoices:read")]

    def get(self, request: Any) -> Response:
        return Response({"owner": request.auth.owner, "user": str(request.user),
                         "key_id": request.auth.key_id, "pid": os.getpid()})


class AnyKey(APIView):
    permission_classes = [HasScopes()]

    def get(self, request: Any) -> Response:
        return Response({"owner": request.auth.owner})


class Health(APIView):
    permission_classes: list[Any] = []
    authentication_classes: list[Any] = []

    def get(self, request: Any) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("invoices", Invoices.as_view()),
    path("any", AnyKey.as_view()),
    path("health", Health.as_view()),
]
