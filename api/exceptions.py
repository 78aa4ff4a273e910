"""Every API error is JSON: `{"message": "...", "errors": {"field": ["..."]}}`.

The services raise Django's `ValidationError` (a dict of field errors) and `PermissionDenied`;
they become 400 and 403 here. Deleting a row something still points at is a 409. Nothing a
client sends can make a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


def django_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [
                str(message) for item in items for message in item.messages
            ]
            for field, items in error.error_dict.items()
        }
    return {"non_field_errors": [str(message) for message in error.messages]}


def _flatten(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {str(key): value for key, value in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {}


def _first_message(errors: dict[str, Any]) -> str:
    for value in errors.values():
        while isinstance(value, list | dict) and value:
            value = value[0] if isinstance(value, list) else next(iter(value.values()))
        if value:
            return str(value)
    return _("Invalid input.")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        errors = django_errors(exc)
        return Response({"message": _first_message(errors), "errors": errors}, status=400)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, ProtectedError | RestrictedError):
        exc = Conflict(_("Other records still use this one; archive it instead."))
    elif isinstance(exc, IntegrityError):
        # A rule the database enforces and validation did not foresee (or a race).
        exc = Conflict(_("This conflicts with existing data."))
    elif isinstance(exc, OverflowError):
        # A number beyond what the database stores (an id of 30 digits): bad input.
        exc = exceptions.ValidationError({"non_field_errors": [_("A number is out of range.")]})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or _("Not found."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        response.data = {"message": _first_message(errors), "errors": errors}
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"message": str(detail or exc), "errors": {}}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response.data["retry_after"] = int(exc.wait) + 1
    return response


class BodyLimitMixin:
    """Refuses a body over HELPDESK_API_MAX_BODY_SIZE with 413 before anything reads it."""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        from django.conf import settings

        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.HELPDESK_API_MAX_BODY_SIZE:
            raise PayloadTooLarge()
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


def not_found(request: Any, *args: Any, **kwargs: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"message": _("Not found."), "errors": {}}, status=404)
