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


# --- the other models: each has a factory, so tests/test_model_names.py can name them all ---


class ProgramSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.ProgramSettings"
        django_get_or_create = ("pk",)

    pk = 1
    name = "Klantenclub"


class PointsAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.PointsAccount"
        django_get_or_create = ("member",)

    member = factory.SubFactory(MemberFactory)
    balance = 0


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.Purchase"

    partner = factory.SubFactory(PartnerFactory)
    external_id = factory.Sequence(lambda n: f"D{n:09d}")
    member = factory.SubFactory(MemberFactory)
    amount = Decimal("60.18")
    purchased_at = factory.LazyFunction(timezone.now)
    store = "Utrecht Centrum"


class PurchaseLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.PurchaseLine"

    purchase = factory.SubFactory(PurchaseFactory)
    product_code = "SH-42"
    description = "Wandelschoenen"
    category = "schoenen"
    quantity = Decimal("1.000")
    amount = Decimal("60.18")


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.Refund"

    purchase = factory.SubFactory(PurchaseFactory)
    external_id = factory.Sequence(lambda n: f"R{n:06d}")
    amount = Decimal("20.00")


class LedgerEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.LedgerEntry"

    account = factory.SubFactory(PointsAccountFactory)
    kind = "earn"
    points = 120
    balance_after = 120
    reason = "Purchase"
    source = "purchase"


class TierChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.TierChange"

    account = factory.SubFactory(PointsAccountFactory)
    from_tier = None
    to_tier = factory.SubFactory(TierFactory)
    figure = Decimal("250.00")
    reason = "threshold"


class ConsistencyCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.ConsistencyCheck"

    accounts_checked = 1200
    mismatches = factory.LazyFunction(list)


class PurchaseImportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.PurchaseImport"

    partner = factory.SubFactory(PartnerFactory)
    file = factory.django.FileField(filename="purchases.csv", data=b"type,external_id\n")


class ConsentRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.ConsentRecord"

    member = factory.SubFactory(MemberFactory)
    channel = "email"
    granted = True
    source = "portal"


class TermsAcceptanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.TermsAcceptance"

    member = factory.SubFactory(MemberFactory)
    terms_version = factory.SubFactory(TermsVersionFactory)


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.Invitation"

    member = factory.SubFactory(MemberFactory, status=MemberStatus.INVITED)


class InvitationImportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.InvitationImport"

    file = factory.django.FileField(filename="invitations.csv", data=b"email\n")


class InvitationOptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.InvitationOptOut"

    email = factory.Sequence(lambda n: f"no-invitations{n}@example.com")


class FaqItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.FaqItem"

    question_nl = "Hoe spaar ik punten?"
    question_en = "How do I collect points?"
    answer_nl = "Laat je pas zien bij elke aankoop."
    answer_en = "Show your card with every purchase."


class PrivacyStatementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.PrivacyStatement"

    version = factory.Sequence(lambda n: f"2026.{n}")
    body_nl = "Privacyverklaring."
    body_en = "Privacy statement."


class VoucherCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "rewards.VoucherCode"

    reward = factory.SubFactory(RewardFactory)
    code = factory.Sequence(lambda n: f"IMPORTED{n:06d}")


class RedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "rewards.Redemption"

    member = factory.SubFactory(MemberFactory)
    reward = factory.SubFactory(RewardFactory)
    points = 100
    status = "issued"


class VoucherImportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "rewards.VoucherImport"

    reward = factory.SubFactory(RewardFactory)
    file = factory.django.FileField(filename="codes.csv", data=b"code\n")


class SegmentationSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segmentation.SegmentationSettings"
        django_get_or_create = ("pk",)

    pk = 1


class SegmentationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segmentation.SegmentationRun"

    status = "done"
    member_count = 0


class RunRangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segmentation.RunRange"

    run = factory.SubFactory(SegmentationRunFactory)
    number = 1
    first_id = 1
    last_id = 250_000


class MemberScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segmentation.MemberScore"

    run = factory.SubFactory(SegmentationRunFactory)
    member = factory.SubFactory(MemberFactory)
    recency_days = 12
    frequency = 8
    monetary = 412.5
    r_score = 5
    f_score = 4
    m_score = 4
    segment = "champions"
    quadrant = "true_friends"


class RuleSegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segmentation.RuleSegment"

    name = factory.Sequence(lambda n: f"Big spenders {n}")
    rule = factory.LazyFunction(lambda: {"field": "spend", "op": "gte", "value": 100})


class RuleSegmentMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segmentation.RuleSegmentMember"

    run = factory.SubFactory(SegmentationRunFactory)
    segment = factory.SubFactory(RuleSegmentFactory)
    member = factory.SubFactory(MemberFactory)


class OutboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "outbox.OutboxMessage"

    task = "members.tasks.send_confirmation_email"
    args = factory.LazyFunction(lambda: [1])


class PartnerAPIKeyFactory(factory.django.DjangoModelFactory):
    """The stored key (hashed); the key itself is returned only by `api_key_for`."""

    class Meta:
        model = "partner_api.PartnerAPIKey"

    partner = factory.SubFactory(PartnerFactory)
    name = "till"
    scopes = factory.LazyFunction(lambda: ["purchases:write"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_key(**kwargs)[0]


class IdempotencyRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "partner_api.IdempotencyRecord"

    partner = factory.SubFactory(PartnerFactory)
    key = factory.Sequence(lambda n: f"till-7-{n}")
    fingerprint = "0" * 64
    status_code = 201


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookEndpoint"

    partner = factory.SubFactory(PartnerFactory)
    url = factory.Sequence(lambda n: f"https://crm{n}.example.com/hooks/loyalty")


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookEvent"

    type = "member.enrolled"
    payload = factory.LazyFunction(lambda: {"member_number": "M0000001"})


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookDelivery"

    event = factory.SubFactory(WebhookEventFactory)
    endpoint = factory.SubFactory(WebhookEndpointFactory)


class KpiDayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.KpiDay"
        django_get_or_create = ("day",)

    day = factory.Sequence(lambda n: dt.date(2026, 1, 1) + dt.timedelta(days=n))
    purchases = 12
    spend = Decimal("480.00")


class KpiRollupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.KpiRollup"

    complete_until = factory.LazyFunction(timezone.now)
    horizon = dt.date(2025, 1, 1)
    computed_at = factory.LazyFunction(timezone.now)
    points_outstanding = 125_000


class AuditEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "audit.AuditEntry"

    actor = factory.SubFactory(StaffUserFactory)
    actor_name = factory.LazyAttribute(lambda entry: entry.actor.email)
    action = "points.adjusted"
    object_repr = "Member 512345678904"
    reason = "Double booking"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Message"

    name = factory.Sequence(lambda n: f"Spring offer {n}")
    subject_nl = "Lente bij ons"
    subject_en = "Spring with us"
    html_nl = "<p>Hallo {{ first_name }}</p>"
    html_en = "<p>Hello {{ first_name }}</p>"
    text_nl = "Hallo {{ first_name }}"
    text_en = "Hello {{ first_name }}"


class CampaignSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.CampaignSettings"
        django_get_or_create = ("pk",)

    pk = 1


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Campaign"

    name = factory.Sequence(lambda n: f"Spring campaign {n}")
    message = factory.SubFactory(MessageFactory)
    segments = ["champions"]


class CampaignTransitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.CampaignTransition"

    campaign = factory.SubFactory(CampaignFactory)
    from_status = "draft"
    to_status = "scheduled"


class RecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Recipient"

    campaign = factory.SubFactory(CampaignFactory)
    member = factory.SubFactory(MemberFactory)
    email = factory.LazyAttribute(lambda recipient: recipient.member.email)
    language = "nl"
    segment = "champions"


class AutomationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Automation"

    name = factory.Sequence(lambda n: f"Welcome {n}")
    trigger = "welcome"
    message = factory.SubFactory(MessageFactory)
    campaign = factory.SubFactory(CampaignFactory, kind="automation", segments=[])


class BirthdayCreditFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.BirthdayCredit"

    member = factory.SubFactory(MemberFactory)
    year = 2026
    entry = factory.SubFactory(
        LedgerEntryFactory,
        account=factory.SubFactory(PointsAccountFactory, member=factory.SelfAttribute("...member")),
        kind="bonus",
        source="system",
        reason="Birthday points",
    )


class LinkClickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.LinkClick"

    recipient = factory.SubFactory(RecipientFactory)
    url = factory.Sequence(lambda n: f"https://shop.example.com/product/{n}")


class SuppressedAddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.SuppressedAddress"

    email = factory.Sequence(lambda n: f"bounced{n}@example.com")
    reason = "hard_bounce"
