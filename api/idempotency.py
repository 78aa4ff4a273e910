"""`Idempotency-Key` on POST: a retried request gets the first answer instead of doing the
work twice (a second ticket). Keys are per user; the same key with a different request is a
409, as is a retry while the first request is still being worked on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import Conflict
from .models import IdempotentRequest

HEADER = "HTTP_IDEMPOTENCY_KEY"


def _fingerprint(request: Request) -> str:
    try:
        data = json.dumps(request.data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        data = repr(request.data)
    return hashlib.sha256(f"{request.method} {request.path}\n{data}".encode()).hexdigest()


def idempotent(request: Request, handler: Callable[[], Response]) -> Response:
    key = (request.META.get(HEADER) or "").strip()
    if not key:
        return handler()
    if len(key) > 255:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({"Idempotency-Key": [_("Use at most 255 characters.")]})
    fingerprint = _fingerprint(request)
    try:
        with transaction.atomic():
            record = IdempotentRequest.objects.create(
                user=request.user, key=key, path=request.path[:255], request_hash=fingerprint
            )
    except IntegrityError:
        previous = IdempotentRequest.objects.get(user=request.user, key=key)
        if previous.request_hash != fingerprint:
            raise Conflict(_("This Idempotency-Key was used for a different request.")) from None
        if previous.response_status is None:
            raise Conflict(
                _("The first request with this Idempotency-Key is still running.")
            ) from None
        response = Response(previous.response_body, status=previous.response_status)
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        response = handler()
    except BaseException:
        # A failed request may be retried with the same key (and corrected).
        record.delete()
        raise
    if response.status_code >= 400:
        record.delete()
        return response
    record.response_status = response.status_code
    record.response_body = _jsonable(response.data)
    record.save(update_fields=["response_status", "response_body"])
    return response


def _jsonable(data: Any) -> Any:
    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))
