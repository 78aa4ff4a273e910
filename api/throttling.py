"""Rate limits per API key (per user for the staff session, per address without either),
counted in a cache every web process shares (Redis in production)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from accounts.api_keys import client_ip


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api"

    @property
    def cache(self) -> Any:  # type: ignore[override]
        return caches[settings.HELPDESK_API_THROTTLE_CACHE]

    def get_rate(self) -> str | None:
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str:
        api_key = getattr(request, "auth", None)
        if api_key is not None and hasattr(api_key, "key_hash"):
            ident = f"key:{api_key.pk}"
        elif getattr(request.user, "is_authenticated", False):
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{client_ip(request.META)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
