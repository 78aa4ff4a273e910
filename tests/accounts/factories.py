import factory

from accounts.models import (
    Agent,
    AgentDepartmentAccess,
    Organization,
    OrganizationDomain,
    Role,
    User,
)
from accounts.permissions import forget_scope


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"user{n}@customers.example")
    name = factory.Sequence(lambda n: f"User {n}")

    @classmethod
    def _create(cls, model_class: type[User], *args: object, **kwargs: object) -> User:
        password = kwargs.pop("password", None)
        return model_class.objects.create_user(kwargs.pop("email"), password, **kwargs)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Organization {n}")

    @factory.post_generation
    def domains(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        for domain in extracted or []:
            OrganizationDomain.objects.create(organization=self, domain=domain)


def role(name: str) -> Role:
    """One of the roles the data migration ships."""
    return Role.objects.get(name=name)


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent
        skip_postgeneration_save = True

    user = factory.SubFactory(
        UserFactory, email=factory.Sequence(lambda n: f"agent{n}@staff.example")
    )
    department = factory.SubFactory("tests.routing.factories.DepartmentFactory")
    role = factory.LazyFunction(lambda: role("All Access"))

    @factory.post_generation
    def extended(self, create: bool, extracted: dict | None, **kwargs: object) -> None:
        for department, extended_role in (extracted or {}).items():
            AgentDepartmentAccess.objects.create(
                agent=self, department=department, role=extended_role
            )
        forget_scope(self.user)

    @factory.post_generation
    def teams(self, create: bool, extracted: list | None, **kwargs: object) -> None:
        if extracted:
            self.teams.set(extracted)
        forget_scope(self.user)


def agent_user(**kwargs: object) -> User:
    """A user with an agent profile (kwargs go to AgentFactory)."""
    return AgentFactory(**kwargs).user
