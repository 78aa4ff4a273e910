"""API keys: made with 256 bits of randomness, shown once, stored as a SHA-256.

A key acts as its user. Deactivating the user, revoking the key or letting it expire stops
it at once: every request looks the key up again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ApiKey, User

KEY_PREFIX = "hd_"
VISIBLE_CHARS = 10
# The built-in user a key acts as when no user is named: a service account with no password
# and no agent profile, so it can open tickets on the osTicket endpoints and nothing else.
SERVICE_ACCOUNT_EMAIL = "api-service@helpdesk.invalid"
# Writing the last-used time on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# osTicket's answers, word for word (its clients match on them).
MESSAGE_REQUIRED = "Valid API key required"
MESSAGE_INACTIVE = "API key not found/active or source IP not authorized"
MESSAGE_NOT_AUTHORIZED = "API key not authorized"


class ApiKeyRefused(Exception):
    """The key is missing, unknown, not allowed from this address, or no longer valid."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class NewKey:
    api_key: ApiKey
    key: str  # the only time the key exists in clear


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _generate() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def allowed_ips_clean(values: list[str] | str | None) -> list[str]:
    """Addresses or networks in canonical form; a ValidationError names the bad one."""
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    cleaned = []
    for value in values or []:
        try:
            cleaned.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            raise ValidationError(
                {"allowed_ips": _("%(value)s is not an address or network.") % {"value": value}}
            ) from None
    return list(dict.fromkeys(cleaned))


def service_account() -> User:
    """The built-in user of keys made without one (created on first use)."""
    user = User.objects.filter(email=SERVICE_ACCOUNT_EMAIL).first()
    return user or User.objects.create_user(SERVICE_ACCOUNT_EMAIL, None, name="API")


@transaction.atomic
def api_key_create(
    *,
    name: str,
    user: User | None = None,
    allowed_ips: list[str] | str | None = None,
    can_create_tickets: bool = False,
    can_exec_cron: bool = False,
    expires_at: datetime | None = None,
    notes: str = "",
    by: User | None = None,
) -> NewKey:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": _("Give the key a name.")})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    key = _generate()
    api_key = ApiKey.objects.create(
        name=name[:128],
        prefix=key[:VISIBLE_CHARS],
        key_hash=key_hash(key),
        user=user or service_account(),
        allowed_ips=allowed_ips_clean(allowed_ips),
        can_create_tickets=can_create_tickets,
        can_exec_cron=can_exec_cron,
        expires_at=expires_at,
        notes=notes,
        created_by=by,
    )
    return NewKey(api_key=api_key, key=key)


@transaction.atomic
def api_key_regenerate(*, api_key: ApiKey) -> NewKey:
    """A new secret for the same key (name, user, flags); the old secret stops at once."""
    key = _generate()
    api_key.prefix, api_key.key_hash = key[:VISIBLE_CHARS], key_hash(key)
    api_key.save(update_fields=["prefix", "key_hash", "updated_at"])
    return NewKey(api_key=api_key, key=key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    api_key.is_active = False
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["is_active", "revoked_at", "updated_at"])
    return api_key


def ip_allowed(api_key: ApiKey, address: str) -> bool:
    if not api_key.allowed_ips:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in api_key.allowed_ips:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(meta: dict) -> str:
    """REMOTE_ADDR, or the left-most valid X-Forwarded-For address when REMOTE_ADDR is a
    trusted proxy (osTicket's rule)."""
    remote = meta.get("REMOTE_ADDR", "") or ""
    proxies = settings.HELPDESK_TRUSTED_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if not proxies or not forwarded or not remote:
        return remote
    try:
        remote_ip = ipaddress.ip_address(remote)
        trusted = "*" in proxies or any(
            remote_ip in ipaddress.ip_network(proxy, strict=False) for proxy in proxies
        )
    except ValueError:
        return remote
    if not trusted:
        return remote
    for candidate in forwarded.split(","):
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            continue
    return remote


def api_key_authenticate(*, key: str, ip: str) -> ApiKey:
    """The valid key for `key` used from `ip`, with its user joined; else `ApiKeyRefused`.

    As osTicket: an unknown key, or a key not allowed from this address, is "Valid API key
    required"; a key that is inactive (revoked, expired, its user deactivated) is "API key
    not found/active or source IP not authorized"."""
    key = (key or "").strip()
    if not key or len(key) > 512:
        raise ApiKeyRefused(MESSAGE_REQUIRED)
    api_key = ApiKey.objects.select_related("user").filter(key_hash=key_hash(key)).first()
    if api_key is None or not ip_allowed(api_key, ip):
        raise ApiKeyRefused(MESSAGE_REQUIRED)
    if not api_key.is_active or api_key.is_expired or not api_key.user.is_active:
        raise ApiKeyRefused(MESSAGE_INACTIVE)
    now = timezone.now()
    address = _address_or_none(ip)
    if (
        api_key.last_used_at is None
        or api_key.last_used_at < now - LAST_USED_RESOLUTION
        or api_key.last_used_ip != address
    ):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now, last_used_ip=address)
        api_key.last_used_at, api_key.last_used_ip = now, address
    return api_key


def _address_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
