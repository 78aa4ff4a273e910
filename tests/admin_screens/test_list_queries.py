"""Every admin list page costs the same number of queries for 2 rows as for 12."""

import pytest
from django.urls import reverse

from accounts.api_keys import api_key_create
from api.models import Webhook, WebhookEvent
from tests.accounts.factories import agent_user
from tests.kb.factories import CannedResponseFactory
from tests.routing.factories import (
    BannedAddressFactory,
    DepartmentFactory,
    FilterFactory,
    HelpTopicFactory,
    TeamFactory,
)
from tests.sla.factories import ScheduleFactory, SLAPlanFactory

pytestmark = pytest.mark.django_db


def _webhook(n: int) -> None:
    Webhook.objects.create(
        name=f"Hook {n}",
        url=f"https://hooks{n}.example/in",
        secret="a-long-shared-secret",
        events=[WebhookEvent.TICKET_CREATED],
    )


def _topic(n: int) -> None:
    HelpTopicFactory(department=DepartmentFactory(), sla=SLAPlanFactory())


def _team(n: int) -> None:
    team = TeamFactory(lead=agent_user(department=DepartmentFactory()).agent)
    team.members.add(agent_user(department=DepartmentFactory()).agent)


ROWS = {
    "staff_admin:topic_list": _topic,
    "staff_admin:team_list": _team,
    "staff_admin:filter_list": lambda n: FilterFactory(canned_response=CannedResponseFactory()),
    "staff_admin:banned_list": lambda n: BannedAddressFactory(),
    "staff_admin:role_list": None,
    "staff_admin:status_list": None,
    "staff_admin:priority_list": None,
    "sla_admin:plan_list": lambda n: SLAPlanFactory(schedule=ScheduleFactory()),
    "sla_admin:schedule_list": lambda n: ScheduleFactory(),
    "kb_admin:canned_list": lambda n: CannedResponseFactory(department=DepartmentFactory()),
    "api_admin:key_list": lambda n: api_key_create(
        name=f"Key {n}", user=agent_user(department=DepartmentFactory())
    ),
    "api_admin:webhook_list": _webhook,
    "mail_admin:template_list": None,
}


@pytest.mark.parametrize("url_name", ROWS)
def test_the_list_costs_the_same_queries_for_more_rows(
    admin_client, url_name, django_assert_max_num_queries
):
    url = reverse(url_name)
    make = ROWS[url_name]

    def load() -> int:
        with django_assert_max_num_queries(12) as captured:
            response = admin_client.get(url)
        assert response.status_code == 200
        return len(captured.captured_queries)

    load()  # the first page of a test also reads the (then cached) help desk settings
    if make is None:  # a short fixed list (roles, statuses, priorities, templates)
        assert load() <= 12
        return
    for n in range(2):
        make(n)
    few = load()
    for n in range(2, 12):
        make(n)
    assert load() == few
