"""API keys in `X-API-Key` (osTicket's header) or `Authorization: Bearer`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.api_keys import ApiKeyRefused, api_key_authenticate, client_ip


def key_from_request(request: Any) -> str | None:
    """The key the request carries, or None when it carries none."""
    meta = request.META
    if "HTTP_X_API_KEY" in meta:
        return meta["HTTP_X_API_KEY"]
    scheme, _space, credentials = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A request with a key is authenticated by it alone (no session, no CSRF); a request
    without one falls through to the staff session."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = key_from_request(request)
        if key is None:
            return None
        try:
            api_key = api_key_authenticate(key=key, ip=client_ip(request.META))
        except ApiKeyRefused as refused:
            raise exceptions.AuthenticationFailed(refused.message) from None
        request._request.api_key = api_key
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}
