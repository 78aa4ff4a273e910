"""Who may open the admin screens: admins by permission; other agents get 403; customers go
to the portal; anonymous visitors to the staff sign-in."""

import pytest
from django.urls import URLPattern, reverse

from helpdesk import urls_admin
from tests.accounts.factories import agent_user, role

pytestmark = pytest.mark.django_db


def _admin_urls() -> list[str]:
    urls = []
    for pattern in urls_admin.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = dict.fromkeys(pattern.pattern.converters, 1)
        urls.append(reverse(f"staff_admin:{pattern.name}", kwargs=kwargs))
    return urls


ADMIN_URLS = _admin_urls()


def test_every_screen_of_the_menu_is_installed():
    from helpdesk.admin_menu import MENU

    names = {f"staff_admin:{p.name}" for p in urls_admin.urlpatterns}
    ours = [
        item.url_name
        for _t, items in MENU
        for item in items
        if item.url_name.startswith("staff_admin:")
    ]
    assert set(ours) <= names


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_an_agent_without_admin_permissions_gets_403(client, agent, url):
    client.force_login(agent)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_a_customer_is_sent_to_the_portal(client, customer, url):
    client.force_login(customer)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


@pytest.mark.parametrize("url", ADMIN_URLS[:3])
def test_anonymous_visitors_go_to_the_staff_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:login"))


def test_admin_permissions_are_separate(client, department):
    """A routing admin manages departments, not agents or settings."""
    from accounts.models import Role

    routing_admin = Role.objects.create(
        name="Routing admin", permissions=[*role("All Access").permissions, "admin.routing"]
    )
    client.force_login(agent_user(department=department, role=routing_admin))
    assert client.get(reverse("staff_admin:department_list")).status_code == 200
    assert client.get(reverse("staff_admin:agent_list")).status_code == 403
    assert client.get(reverse("staff_admin:settings")).status_code == 403
    index = client.get(reverse("staff_admin:index"))
    assert index.status_code == 200
    assert reverse("staff_admin:department_list") in index.content.decode()
    assert reverse("staff_admin:agent_list") not in index.content.decode()


def test_the_index_shows_a_card_per_section(admin_client):
    page = admin_client.get(reverse("staff_admin:index")).content.decode()
    for name in ("department_list", "agent_list", "role_list", "status_list", "settings", "log"):
        assert reverse(f"staff_admin:{name}") in page


@pytest.mark.parametrize("url", [url for url in ADMIN_URLS if "/1/" not in url])
def test_an_admin_opens_every_screen(admin_client, url):
    assert admin_client.get(url).status_code in (200, 405)
