import factory

from routing.models import (
    BannedAddress,
    Category,
    CtiItem,
    CtiType,
    Department,
    Filter,
    FilterRule,
    HelpTopic,
    Team,
)


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"Department {n}")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class HelpTopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HelpTopic

    name = factory.Sequence(lambda n: f"Topic {n}")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")


class CtiTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CtiType

    name = factory.Sequence(lambda n: f"Type {n}")
    category = factory.SubFactory(CategoryFactory)


class CtiItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CtiItem

    name = factory.Sequence(lambda n: f"Item {n}")
    type = factory.SubFactory(CtiTypeFactory)


def cti(category: str, type_: str, item: str) -> CtiItem:
    """The item `category / type / item`, made with whatever levels are missing."""
    found_category, _ = Category.objects.get_or_create(name=category)
    found_type, _ = CtiType.objects.get_or_create(category=found_category, name=type_)
    found_item, _ = CtiItem.objects.get_or_create(type=found_type, name=item)
    return found_item


class FilterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Filter
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Filter {n}")
    sort_order = factory.Sequence(lambda n: n)

    @factory.post_generation
    def rules(self, create: bool, extracted: list[tuple] | None, **kwargs: object) -> None:
        """rules=[(field, operator, value), (RuleField.HEADER, operator, value, header)]"""
        for field, operator, value, *header in extracted or []:
            rule = FilterRule(
                filter=self, field=field, operator=operator, value=value, header="".join(header)
            )
            rule.full_clean()
            rule.save()


class BannedAddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BannedAddress

    address = factory.Sequence(lambda n: f"spammer{n}@spam.example")
