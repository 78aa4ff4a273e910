"""Writes on people: customers found or created by address, agents and their access."""

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from helpdesk.lib.memo import VersionedMemo
from helpdesk.lib.transactions import clash_retried, retried

from .models import (
    Agent,
    AgentDepartmentAccess,
    Organization,
    OrganizationDomain,
    Role,
    User,
    UserEmail,
    normalize_email,
)
from .permissions import AgentScope, forget_scope, scope_none_known

# RFC 6532 local part: a dot-atom whose characters are RFC 5322 atext or any non-ASCII letter,
# mark, number, symbol or punctuation (no spaces, no controls).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_UTF8_LOCAL_PART = re.compile(rf"(?:{_ATEXT}|[^\x00-\x7f\s])+(?:\.(?:{_ATEXT}|[^\x00-\x7f\s])+)*")


def email_address_validate(address: str) -> None:
    """Django's check, widened to internationalised addresses (RFC 6532, `jdöe@mächine.de`):
    mail systems deliver them, and their senders must be able to open tickets.

    Django accepts non-ASCII domains (as IDNA) but only ASCII local parts."""
    try:
        validate_email(address)
        return
    except ValidationError:
        local, at, domain = address.rpartition("@")
        if (
            not at
            or local.isascii()
            or len(local) > 64
            or len(address) > 254
            or not local.isprintable()
            or not _UTF8_LOCAL_PART.fullmatch(local)
        ):
            raise
    validate_email(f"user@{domain}")


def _organization_domains() -> dict[str, int]:
    return dict(OrganizationDomain.objects.values_list("domain", "organization_id"))


# Every new customer's domain is looked up: the domains are kept per process (helpdesk.lib.memo).
_DOMAINS = VersionedMemo("accounts.organization_domains", _organization_domains).watch(
    OrganizationDomain
)


def organization_id_for_email(email: str) -> int | None:
    """The id of the organization whose email domains include the address's domain."""
    domain = normalize_email(email).rpartition("@")[2]
    return _DOMAINS.get().get(domain) if domain else None


def organization_for_email(email: str) -> Organization | None:
    """The organization whose email domains include the address's domain."""
    organization_id = organization_id_for_email(email)
    if organization_id is None:
        return None
    return Organization.objects.filter(pk=organization_id).first()


def user_get_by_email(*, email: str) -> User | None:
    # An address belongs to one user at most (unique): no ordering, one model to build.
    return next(iter(User.objects.filter(emails__email=normalize_email(email))[:1]), None)


# The users of many addresses, looked up together for a run of work (`users_looked_up`):
# address -> the user's field values, or None for an address no one had.
_looked_up: ContextVar[dict[str, tuple[Any, ...] | None] | None] = ContextVar(
    "users_looked_up", default=None
)
_USER_FIELDS = [field.attname for field in User._meta.concrete_fields]


@contextmanager
def users_looked_up(emails: Iterable[str]) -> Iterator[None]:
    """Find the users of `emails` in one query, for `user_get_or_create_by_email` inside the
    block (a run of fetched mail: its senders and the people they copy).

    Each use builds a fresh instance from the values read. An address no one had is created
    at its first use without asking again (a customer made meanwhile by someone else is
    caught by the unique address, then read); after that it is asked for as usual."""
    addresses = {normalize_email(email) for email in emails if email}
    found: dict[str, tuple[Any, ...] | None] = dict.fromkeys(addresses)
    if addresses:
        for row in UserEmail.objects.filter(email__in=addresses).values_list(
            "email", *(f"user__{name}" for name in _USER_FIELDS)
        ):
            found[row[0]] = row[1:]
    token = _looked_up.set(found)
    try:
        yield
    finally:
        _looked_up.reset(token)


def user_get_or_create_by_email(*, email: str, name: str = "") -> User:
    """The user who owns `email` (primary or extra address), else a new customer without a
    usable password, joined to the organization of the address's domain."""
    address = normalize_email(email)
    try:
        email_address_validate(address)
    except ValidationError:
        raise ValidationError({"email": _("Enter a valid email address.")}) from None
    looked_up = _looked_up.get()
    if looked_up is not None and address in looked_up:
        values = looked_up[address]
        if values is not None:
            return User.from_db(transaction.get_connection().alias, _USER_FIELDS, values)
        del looked_up[address]  # made now: from here on, it is asked for
    else:
        user = user_get_by_email(email=address)
        if user is not None:
            return user
    try:
        # Without a savepoint where the caller does its work again on a clash (`Retry`).
        with clash_retried() if retried() else transaction.atomic():
            user = User.objects.create_user(
                address,
                None,
                name=name.strip()[:150],
                organization_id=organization_id_for_email(address),
            )
    except IntegrityError:
        # Another request created the same customer at the same moment.
        user = user_get_by_email(email=address)
        if user is None:
            raise
        return user
    scope_none_known(user)  # a new customer is nobody's agent
    return user


@transaction.atomic
def user_email_add(*, user: User, email: str) -> UserEmail:
    address = normalize_email(email)
    try:
        email_address_validate(address)
    except ValidationError:
        raise ValidationError({"email": _("Enter a valid email address.")}) from None
    if UserEmail.objects.filter(email=address).exists():
        raise ValidationError({"email": _("This address already belongs to a user.")})
    return UserEmail.objects.create(user=user, email=address, is_primary=False)


def agent_scopes_preload(users: list[User]) -> None:
    """Work out the agent scope (`permissions.agent_scope`) of many users in three queries
    rather than three each, for code that checks access for a list of agents at once (the
    recipients of an alert). It builds the scope exactly as `agent_scope` does; users who
    are no active agent get None."""
    wanted = [user for user in users if user.is_active and not hasattr(user, "_agent_scope")]
    if not wanted:
        return
    agents = {
        agent.user_id: agent
        for agent in Agent.objects.filter(user__in=wanted, is_active=True)
        .select_related("role")
        .prefetch_related("department_access__role", "teams")
    }
    for user in wanted:
        agent_scope_attach(user, agents.get(user.pk))


def agent_scope_attach(user: User, agent: Agent | None) -> None:
    """Set the agent scope of `user` from their active `agent` row loaded with its `role`
    and prefetched `department_access__role` and `teams` (None: no active agent), exactly
    as `permissions.agent_scope` builds it."""
    scope = None
    if agent is not None:
        roles = {access.department_id: access.role for access in agent.department_access.all()}
        roles[agent.department_id] = agent.role
        scope = AgentScope(
            primary_department_id=agent.department_id,
            primary_role=agent.role,
            roles_by_department=roles,
            team_ids=frozenset(team.pk for team in agent.teams.all() if team.is_active),
            assigned_only=agent.assigned_only,
        )
    user._agent_scope = scope  # type: ignore[attr-defined]


@transaction.atomic
def agent_create(
    *,
    user: User,
    department: object,
    role: Role,
    extended: dict[object, Role] | None = None,
    teams: list[object] | None = None,
    assigned_only: bool = False,
    signature: str = "",
) -> Agent:
    """Make `user` an agent of `department` with `role`, plus extended access and teams."""
    agent = Agent.objects.create(
        user=user,
        department=department,
        role=role,
        assigned_only=assigned_only,
        signature=signature,
    )
    for extra_department, extra_role in (extended or {}).items():
        if extra_department != department:
            AgentDepartmentAccess.objects.create(
                agent=agent, department=extra_department, role=extra_role
            )
    if teams:
        agent.teams.set(teams)
    forget_scope(user)
    return agent


# --- Admin screens: agents and roles ----------------------------------------------------------


def agent_invite_send(*, agent: Agent, base_url: str) -> None:
    """Mail the agent a link to set their password (Django's password-reset token: it stops
    working once the password is set, and after PASSWORD_RESET_TIMEOUT)."""
    from django.conf import settings
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from helpdesk.config import config

    user = agent.user
    path = reverse(
        "staff:password_set",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "user": user,
        "link": base_url.rstrip("/") + path,
        "title": config().helpdesk_name,
        "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = render_to_string("admin_screens/emails/invite_subject.txt", context).strip()
    body = render_to_string("admin_screens/emails/invite_body.txt", context)
    send_mail(" ".join(subject.split()), body, None, [user.email])


def agent_invite(
    *,
    email: str,
    name: str,
    department: object,
    role: Role,
    teams: list[object] | None = None,
    assigned_only: bool = False,
    actor: User,
    base_url: str,
) -> Agent:
    """Make the person with `email` an agent (a new user without a password, or an existing
    customer, who keeps theirs) and mail them a set-password link after commit."""
    from helpdesk.adminlog import admin_log_record
    from helpdesk.models import AdminAction

    address = normalize_email(email)
    with transaction.atomic():
        user = user_get_by_email(email=address)
        if user is not None and Agent.objects.filter(user=user).exists():
            raise ValidationError({"email": _("This person is already an agent.")})
        if user is None:
            user = User.objects.create_user(address, None, name=name.strip()[:150])
        elif name.strip() and not user.name:
            user.name = name.strip()[:150]
            user.save(update_fields=["name"])
        agent = agent_create(
            user=user, department=department, role=role, teams=teams, assigned_only=assigned_only
        )
        admin_log_record(
            actor=actor,
            obj=agent,
            action=AdminAction.CREATE,
            changes={
                "email": [None, user.email],
                "name": [None, user.name],
                "department": [None, str(department)],
                "role": [None, str(role)],
                "teams": [None, sorted(str(team) for team in teams or [])],
                "assigned_only": [None, assigned_only],
            },
        )
        transaction.on_commit(lambda: agent_invite_send(agent=agent, base_url=base_url))
    return agent


def _access_display(agent: Agent) -> list[str]:
    return sorted(
        f"{access.department} ({access.role})"
        for access in agent.department_access.select_related("department", "role")
    )


def agent_update(*, form: object, access: object, actor: User) -> Agent:
    """Save an agent's profile form (with name and teams) and extended-access formset, both
    valid, and log the change. Admins cannot deactivate themselves, nor give themselves a
    role without "admin.staff" (they would lock themselves out of this screen)."""
    from helpdesk.adminlog import admin_log_record, form_changes
    from helpdesk.models import AdminAction

    agent: Agent = form.instance  # type: ignore[attr-defined]
    data = form.cleaned_data  # type: ignore[attr-defined]
    if agent.user_id == actor.pk and not data["is_active"]:
        raise ValidationError({"is_active": _("You cannot deactivate yourself.")})
    if agent.user_id == actor.pk and not actor.is_superuser and not data["role"].has("admin.staff"):
        raise ValidationError(
            {"role": _("Your own role keeps “Administer agents, roles and teams”.")}
        )
    with transaction.atomic():
        changes = form_changes(form)  # type: ignore[arg-type]
        before_access = _access_display(agent)
        agent = form.save()  # type: ignore[attr-defined]
        user = agent.user
        if user.name != data["name"].strip():
            user.name = data["name"].strip()
            user.save(update_fields=["name"])
        # Inactive teams are not on the form; membership of them is kept.
        kept = list(agent.teams.filter(is_active=False))
        agent.teams.set([*kept, *data["teams"]])
        access.instance = agent  # type: ignore[attr-defined]
        access.save()  # type: ignore[attr-defined]
        after_access = _access_display(agent)
        if before_access != after_access:
            changes["extended access"] = [before_access, after_access]
        if changes:
            admin_log_record(actor=actor, obj=agent, action=AdminAction.UPDATE, changes=changes)
    forget_scope(agent.user)
    forget_scope(actor)
    return agent


def role_save(*, form: object, actor: User) -> Role:
    """Save a role form. Admins cannot take "admin.staff" from their own primary role, which
    would lock them out of this screen."""
    from helpdesk.adminlog import admin_form_save

    role: Role = form.instance  # type: ignore[attr-defined]
    permissions = form.cleaned_data["permissions"]  # type: ignore[attr-defined]
    if (
        role.pk is not None
        and not actor.is_superuser
        and "admin.staff" not in permissions
        and Agent.objects.filter(user=actor, role_id=role.pk).exists()
    ):
        raise ValidationError(
            {"permissions": _("Your own role keeps “Administer agents, roles and teams”.")}
        )
    saved = admin_form_save(form=form, actor=actor)  # type: ignore[arg-type]
    forget_scope(actor)
    return saved  # type: ignore[return-value]
