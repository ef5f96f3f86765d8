"""Create the demo logins and print where to use them."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from loyalty.models import Partner, PartnerKind
from loyalty.partner_api.models import ApiScope, PartnerAPIKey
from loyalty.roles import PROGRAM_MANAGER
from loyalty.services import api_key_create, api_key_revoke, points_credit
from members.models import EnrolmentSource, Member, MemberStatus, User
from members.numbers import member_number_generate

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "demo-admin-2026"
MEMBER_EMAIL = "demo@example.com"
MEMBER_PASSWORD = "demo-member-2026"
DEMO_KEY_NAME = "Demo"


class Command(BaseCommand):
    help = "Create (or reset) the demo admin and a demo member login, and print them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        admin, _created = User.objects.get_or_create(email=ADMIN_EMAIL)
        admin.is_staff = admin.is_superuser = admin.is_active = True
        admin.first_name = "Demo"
        admin.last_name = "Beheerder"
        admin.set_password(ADMIN_PASSWORD)
        admin.save()
        manager = Group.objects.filter(name=PROGRAM_MANAGER).first()
        if manager:
            admin.groups.add(manager)

        user, _created = User.objects.get_or_create(email=MEMBER_EMAIL)
        user.is_active = True
        user.set_password(MEMBER_PASSWORD)
        user.save()
        member = Member.objects.filter(email__iexact=MEMBER_EMAIL).first()
        if member is None:
            # Give the login to a loyal demo customer, so the portal shows a real history.
            member = (
                Member.objects.filter(
                    status=MemberStatus.ACTIVE, user__isnull=True, points_account__tier__rank__gte=2
                )
                .order_by("-points_account__balance")
                .first()
            )
            if member is not None:
                member.email = MEMBER_EMAIL
                member.user = user
                member.save(update_fields=["email", "user"])
        if member is None:
            member = Member.objects.create(
                email=MEMBER_EMAIL,
                first_name="Demi",
                last_name="de Demo",
                language="nl",
                member_number=member_number_generate(),
                status=MemberStatus.ACTIVE,
                enrolment_source=EnrolmentSource.PORTAL,
                user=user,
            )
            points_credit(member=member, points=750, reason="Welkomstbonus")
        url = options["url"].rstrip("/")
        self.stdout.write(self.style.SUCCESS("\nThe demo is ready.\n"))
        self.stdout.write(f"  Back office: {url}/admin/   login {ADMIN_EMAIL} / {ADMIN_PASSWORD}")
        self.stdout.write(f"  KPI page:    {url}/admin/kpis/")
        self.stdout.write(f"  Segments:    {url}/admin/segmentation/segmentationrun/dashboard/")
        self.stdout.write(f"  Rewards:     {url}/admin/rewards/reward/")
        self.stdout.write(
            f"  Portal:      {url}/portal/   login {MEMBER_EMAIL} / {MEMBER_PASSWORD}"
        )
        key = self._demo_api_key()
        self.stdout.write(f"  API docs:    {url}/api/v1/docs/   (docs/api.md)")
        self.stdout.write(
            f"  API key:     {key}   (partner 'Webshop', every scope; a new one each run)\n"
            f"  Try:         curl -H 'Authorization: Api-Key {key}' "
            f"{url}/api/v1/members/{member.member_number}/standing/\n"
        )

    def _demo_api_key(self) -> str:
        """A fresh key for the demo's web shop (earlier demo keys revoked)."""
        partner = Partner.objects.filter(kind=PartnerKind.WEBSHOP).order_by("pk").first()
        if partner is None:
            partner = Partner.objects.create(name="Webshop", kind=PartnerKind.WEBSHOP)
        for old in PartnerAPIKey.objects.filter(partner=partner, name=DEMO_KEY_NAME, revoked=False):
            api_key_revoke(api_key=old)
        _record, key = api_key_create(
            partner=partner, name=DEMO_KEY_NAME, scopes=list(ApiScope.values)
        )
        return key
