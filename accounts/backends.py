"""Signing in with an email address and password: Django's ModelBackend, plus a per-process
copy of each signed-in user's row when the cache is shared by every process.

Every request reads its user's row to check the session (`get_user`). With a shared cache
(Redis, as in production) the row is kept per process behind a version token that any save
or delete of a user sets anew (helpdesk.lib.memo): a changed password, a deactivation or a
new role in `is_superuser` takes effect on the next request in every process. With a
per-process cache the row is read every time: another process would not see the change.
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from helpdesk.lib.memo import VersionedMap

USERS: VersionedMap[Any, Any] = VersionedMap("accounts.users")


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id: Any) -> Any:
        if not getattr(settings, "HELPDESK_SHARED_CACHE", False):
            return super().get_user(user_id)
        user = USERS.get(user_id, lambda: super(ModelBackend, self).get_user(user_id))
        # Each request gets its own instance: views set attributes on request.user.
        return copy.copy(user) if user is not None else None
