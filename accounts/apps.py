from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from routing.models import Team

        from .backends import USERS
        from .models import Agent, AgentDepartmentAccess, Role, User
        from .permissions import SCOPES

        SCOPES.watch(Agent, AgentDepartmentAccess, Role, Team).watch_m2m(Team.members.through)
        USERS.watch(User, created=False)
