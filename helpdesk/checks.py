from django.core.checks import CheckMessage, Error, Tags, register

from .startup import MISSING_SECRET_KEY, secret_key_is_set


@register(Tags.security, deploy=True)
def secret_key_check(app_configs: object, **kwargs: object) -> list[CheckMessage]:
    return [] if secret_key_is_set() else [Error(MISSING_SECRET_KEY, id="helpdesk.E001")]
