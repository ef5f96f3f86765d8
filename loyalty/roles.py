"""The back-office roles. A data migration creates the groups; this keeps their permissions
complete after every migrate, so models added later join the Program manager role too."""

from __future__ import annotations

PROGRAM_MANAGER = "Program manager"
SUPPORT_AGENT = "Support agent"

MANAGER_APPS = (
    "members",
    "loyalty",
    "segmentation",
    "rewards",
    "campaigns",
    "django_celery_beat",
    "outbox",  # e-mails and tasks waiting for the broker: see them, hand them over
    "partner_api",  # partners' API keys
    "webhooks",  # partners' endpoints, the delivery log, resend and test events
    "axes",  # failed logins: see them, unlock them
    "audit",  # the audit log: view only (the model has no other permission)
)
# Support agents do not read the audit log: it records every staff member's actions (settings,
# API keys, exports, erasures) for the program's oversight, which answering a member does not
# need; who adjusted a member's points stays visible to them in the ledger ("by").
SUPPORT_PERMISSIONS = (
    ("members", "view_member"),
    ("members", "change_member"),
    ("members", "adjust_points"),
    ("members", "view_consentrecord"),
    ("members", "view_invitation"),
    ("members", "view_termsversion"),
    ("loyalty", "view_ledgerentry"),
    ("loyalty", "view_purchase"),
    ("loyalty", "view_pointsaccount"),
    ("loyalty", "view_partner"),
    ("loyalty", "view_tier"),
    ("loyalty", "view_tierchange"),
    ("segmentation", "view_memberscore"),  # the scores on the member page, not the exports
    ("rewards", "view_reward"),
    ("rewards", "view_vouchercode"),
    ("rewards", "view_redemption"),
    ("rewards", "change_redemption"),  # cancel for a member, check and use vouchers
    ("campaigns", "view_message"),  # what a member was sent: view only, never send
    ("campaigns", "view_campaign"),
    ("campaigns", "view_automation"),  # which lifecycle messages run: view only
    ("campaigns", "view_recipient"),
    ("campaigns", "view_suppressedaddress"),
    ("axes", "view_accessattempt"),  # a member who is locked out calls the support desk:
    ("axes", "delete_accessattempt"),  # the agent unlocks (the admin's "unlock" action)
    ("axes", "view_accessfailurelog"),
)


def sync_role_permissions(group_model, permission_model) -> None:
    """Give each role exactly its permissions (idempotent)."""
    from django.db.models import Q

    manager, _created = group_model.objects.get_or_create(name=PROGRAM_MANAGER)
    manager.permissions.set(
        permission_model.objects.filter(
            Q(content_type__app_label__in=MANAGER_APPS)
            | Q(content_type__app_label="members", codename="view_user")
        )
    )
    support, _created = group_model.objects.get_or_create(name=SUPPORT_AGENT)
    wanted = Q(pk__in=[])
    for app_label, codename in SUPPORT_PERMISSIONS:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    support.permissions.set(permission_model.objects.filter(wanted))


def sync_after_migrate(sender, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    sync_role_permissions(Group, Permission)
