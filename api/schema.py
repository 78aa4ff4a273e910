"""Pieces of the OpenAPI schema shared by the views."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    name="Error",
    fields={
        "message": serializers.CharField(),
        "errors": serializers.DictField(
            child=serializers.JSONField(),
            help_text=(
                "Messages per field, a list of strings (nested for nested fields); empty "
                "when the error is not about a field."
            ),
        ),
    },
)

ERRORS = {
    400: OpenApiResponse(ERROR, description="Invalid input; `errors` names the fields."),
    401: OpenApiResponse(ERROR, description="No valid API key or session."),
    403: OpenApiResponse(ERROR, description="Not allowed."),
    404: OpenApiResponse(ERROR, description="Not found, or not visible to this user."),
    409: OpenApiResponse(ERROR, description="Conflicts with the current state."),
    413: OpenApiResponse(ERROR, description="The request body is too large."),
    429: OpenApiResponse(ERROR, description="Rate limit reached; see Retry-After."),
}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID). Sending the same POST again with the same key returns "
        "the first answer instead of doing it twice."
    ),
)
