"""factory_boy factories: the one place test data is made."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from loyalty.models import EarningRule, Partner, PartnerKind, Tier
from members.models import EnrolmentSource, Member, MemberStatus, TermsVersion, User
from members.numbers import member_number_generate


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("correct-horse-battery-staple")
    is_active = True


class StaffUserFactory(UserFactory):
    email = factory.Sequence(lambda n: f"staff{n}@loyalty.example")
    is_staff = True


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    email = factory.Sequence(lambda n: f"member{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    birth_date = dt.date(1985, 6, 15)
    language = "nl"
    member_number = factory.LazyFunction(member_number_generate)
    status = MemberStatus.ACTIVE
    enrolled_at = factory.LazyFunction(timezone.now)
    enrolment_source = EnrolmentSource.PORTAL


class MemberWithLoginFactory(MemberFactory):
    user = factory.SubFactory(UserFactory, email=factory.SelfAttribute("..email"))


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Partner {n}")
    kind = PartnerKind.SHOP


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n + 1)
    threshold = Decimal("0")
    multiplier = Decimal("1.00")


class EarningRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarningRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    multiplier = Decimal("2.00")
    channel = ""
    product_category = ""


class TermsVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TermsVersion

    version = factory.Sequence(lambda n: f"1.{n}")
    published_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    body_en = "Terms and conditions."
    body_nl = "Algemene voorwaarden."


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "rewards.Reward"

    name_nl = factory.Sequence(lambda n: f"Beloning {n}")
    name_en = factory.Sequence(lambda n: f"Reward {n}")
    kind = "voucher"
    points_cost = 100
    cost_eur = Decimal("5.00")


def email_address_of_length(length: int) -> str:
    """A valid e-mail address of exactly `length` characters (domain labels of at most 63)."""
    local = "a" * 64
    domain_length = length - len(local) - 1 - len(".com")
    labels = []
    while domain_length > 0:
        size = domain_length if domain_length <= 63 else 62
        labels.append("b" * size)
        domain_length -= size + 1
    address = f"{local}@{'.'.join(labels)}.com"
    assert len(address) == length, f"cannot make an address of {length} characters"
    return address


def api_key_for(partner, *scopes: str, **fields):
    """A partner's API key with these scopes (all of them if none are named): (record, key)."""
    from loyalty.partner_api.models import ApiScope, PartnerAPIKey

    return PartnerAPIKey.objects.create_key(
        partner=partner,
        name=fields.pop("name", "till"),
        scopes=list(scopes or ApiScope.values),
        **fields,
    )
