"""CTI: classifying tickets as Category → Type → Item, rerouting them, and archiving levels
that tickets use instead of deleting them."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError

from routing.models import Category, CtiItem, CtiType
from tests.accounts.factories import UserFactory, agent_user, role
from tests.routing.factories import CategoryFactory, CtiItemFactory, CtiTypeFactory, cti
from tests.tickets.factories import open_ticket
from tickets import services
from tickets.models import EventAction, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(department):
    return open_ticket(department=department)


class TestReclassifying:
    def test_an_agent_classifies_a_ticket_and_the_log_shows_it(self, ticket, agent):
        item = cti("Hardware", "Printer", "Fire")
        services.ticket_cti_set(ticket=ticket, by=agent, item=item)
        ticket.refresh_from_db()
        assert (ticket.cti_category, ticket.cti_type, ticket.cti_item) == (
            item.type.category,
            item.type,
            item,
        )
        event = ticket.thread.events.get(action=EventAction.CTI)
        assert event.data["text"] == "Unclassified → Hardware / Printer / Fire"
        assert event.actor == agent

    def test_rerouting_records_old_and_new(self, ticket, agent):
        services.ticket_cti_set(ticket=ticket, by=agent, item=cti("Hardware", "Printer", "Fire"))
        new = cti("Software", "Mail", "Bounce")
        services.ticket_cti_set(ticket=ticket, by=agent, item=new)
        event = ticket.thread.events.filter(action=EventAction.CTI).last()
        assert event.data["text"] == "Hardware / Printer / Fire → Software / Mail / Bounce"
        assert (event.data["from"], event.data["to"]) == (
            "Hardware / Printer / Fire",
            "Software / Mail / Bounce",
        )
        ticket.refresh_from_db()
        assert ticket.cti_category.name == "Software"

    def test_a_classification_can_be_removed(self, ticket, agent):
        services.ticket_cti_set(ticket=ticket, by=agent, item=cti("Hardware", "Printer", "Fire"))
        services.ticket_cti_set(ticket=ticket, by=agent, item=None)
        ticket.refresh_from_db()
        assert (ticket.cti_category, ticket.cti_type, ticket.cti_item) == (None, None, None)
        event = ticket.thread.events.filter(action=EventAction.CTI).last()
        assert event.data["text"] == "Hardware / Printer / Fire → Unclassified"

    def test_setting_the_same_classification_again_is_an_error(self, ticket, agent):
        item = cti("Hardware", "Printer", "Fire")
        services.ticket_cti_set(ticket=ticket, by=agent, item=item)
        with pytest.raises(ValidationError):
            services.ticket_cti_set(ticket=ticket, by=agent, item=item)

    @pytest.mark.parametrize("level", ["category", "type", "item"])
    def test_an_archived_level_cannot_be_chosen(self, ticket, agent, level):
        item = cti("Hardware", "Printer", "Fire")
        archived = {"category": item.type.category, "type": item.type, "item": item}[level]
        archived.is_active = False
        archived.save()
        item.refresh_from_db()
        with pytest.raises(ValidationError) as error:
            services.ticket_cti_set(ticket=ticket, by=agent, item=item)
        assert "archived" in error.value.message_dict["cti_item"][0]

    def test_reclassifying_needs_the_right_to_edit(self, ticket, department):
        viewer = agent_user(department=department, role=role("View Only"))
        for user in (viewer, ticket.user, UserFactory()):
            with pytest.raises(PermissionDenied):
                services.ticket_cti_set(ticket=ticket, by=user, item=cti("A", "B", "C"))

    def test_queues_filter_by_category(self, department, agent):
        hardware, software = cti("Hardware", "Printer", "Fire"), cti("Software", "Mail", "Bounce")
        printers = [open_ticket(department=department) for _ in range(2)]
        mail = open_ticket(department=department)
        for ticket in printers:
            services.ticket_cti_set(ticket=ticket, by=agent, item=hardware)
        services.ticket_cti_set(ticket=mail, by=agent, item=software)
        queue = Ticket.objects.filter(cti_category__name="Hardware")
        assert set(queue) == set(printers)


class TestLevels:
    def test_names_are_unique_under_their_parent(self):
        item = cti("Hardware", "Printer", "Fire")
        with pytest.raises(ValidationError):
            Category(name="Hardware").full_clean()
        with pytest.raises(ValidationError):
            CtiType(category=item.type.category, name="Printer").full_clean()
        with pytest.raises(ValidationError):
            CtiItem(type=item.type, name="Fire").full_clean()
        CtiItem(type=CtiTypeFactory(), name="Fire").full_clean()  # elsewhere it is fine

    def test_full_names_read_from_the_top(self):
        item = cti("Hardware", "Printer", "Fire")
        assert item.type.full_name == "Hardware / Printer"
        assert item.full_name == "Hardware / Printer / Fire"


class TestDeletion:
    @pytest.fixture
    def used(self, ticket, agent):
        item = cti("Hardware", "Printer", "Fire")
        services.ticket_cti_set(ticket=ticket, by=agent, item=item)
        return item

    @pytest.mark.parametrize("level", ["category", "type", "item"])
    def test_a_level_tickets_use_is_not_deleted(self, used, level):
        target = {"category": used.type.category, "type": used.type, "item": used}[level]
        with pytest.raises(ValidationError) as error:
            target.delete()
        assert error.value.messages == [
            f"{target.full_name} is used by 1 ticket(s) and cannot be deleted; archive it instead."
        ]
        assert CtiItem.objects.filter(pk=used.pk).exists()

    def test_even_a_bulk_delete_is_refused_by_the_database(self, used):
        with pytest.raises(ProtectedError):
            Category.objects.all().delete()
        assert CtiItem.objects.filter(pk=used.pk).exists()

    def test_archiving_keeps_the_tickets_classified(self, used, ticket):
        category = used.type.category
        category.is_active = False
        category.save()
        ticket.refresh_from_db()
        assert ticket.cti_item == used

    def test_unused_levels_are_deleted_with_their_children(self):
        item = CtiItemFactory()
        item.type.category.delete()
        assert not CtiItem.objects.exists() and not CtiType.objects.exists()

    def test_a_used_level_stays_under_its_parent(self, used):
        used.type = CtiTypeFactory(category=CategoryFactory())
        with pytest.raises(ValidationError) as error:
            used.full_clean()
        assert "type" in error.value.message_dict
