import pytest
from django.core.exceptions import ValidationError

from tests.routing.factories import DepartmentFactory, HelpTopicFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("factory", [DepartmentFactory, HelpTopicFactory])
def test_names_are_unique_among_siblings_and_at_the_top(factory):
    parent = factory(name="Parent")
    factory(name="Child", parent=parent)
    for duplicate in (factory.build(name="Parent"), factory.build(name="Child", parent=parent)):
        with pytest.raises(ValidationError):
            duplicate.full_clean()
    factory.build(name="Child").full_clean()  # the same name elsewhere is fine


@pytest.mark.parametrize("factory", [DepartmentFactory, HelpTopicFactory])
def test_a_node_cannot_be_its_own_ancestor(factory):
    top = factory(name="Top")
    child = factory(name="Child", parent=top)
    assert child.full_name == "Top / Child"
    top.parent = child
    with pytest.raises(ValidationError) as error:
        top.full_clean()
    assert "parent" in error.value.message_dict
    assert child.full_name  # still answers for the cycle held in memory
