"""Writes on people: customers found or created by address, agents and their access."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

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
from .permissions import forget_scope


def organization_for_email(email: str) -> Organization | None:
    """The organization whose email domains include the address's domain."""
    domain = normalize_email(email).rpartition("@")[2]
    if not domain:
        return None
    match = OrganizationDomain.objects.select_related("organization").filter(domain=domain).first()
    return match.organization if match else None


def user_get_by_email(*, email: str) -> User | None:
    found = UserEmail.objects.select_related("user").filter(email=normalize_email(email)).first()
    return found.user if found else None


def user_get_or_create_by_email(*, email: str, name: str = "") -> User:
    """The user who owns `email` (primary or extra address), else a new customer without a
    usable password, joined to the organization of the address's domain."""
    address = normalize_email(email)
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError({"email": _("Enter a valid email address.")}) from None
    user = user_get_by_email(email=address)
    if user is not None:
        return user
    try:
        with transaction.atomic():
            return User.objects.create_user(
                address, None, name=name.strip()[:150], organization=organization_for_email(address)
            )
    except IntegrityError:
        # Another request created the same customer at the same moment.
        user = user_get_by_email(email=address)
        if user is None:
            raise
        return user


@transaction.atomic
def user_email_add(*, user: User, email: str) -> UserEmail:
    address = normalize_email(email)
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError({"email": _("Enter a valid email address.")}) from None
    if UserEmail.objects.filter(email=address).exists():
        raise ValidationError({"email": _("This address already belongs to a user.")})
    return UserEmail.objects.create(user=user, email=address, is_primary=False)


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
