from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, str]:
    return {"HELPDESK_TITLE": settings.HELPDESK_TITLE}
