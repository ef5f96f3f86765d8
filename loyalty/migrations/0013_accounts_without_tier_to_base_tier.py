"""Accounts opened before members started on the base tier get it now (issue 14): the tier
with threshold 0 (the highest rank among those at 0), with a TierChange "enrolment" each, in
two set-based statements whatever the number of accounts."""

from django.db import migrations
from django.utils import timezone


def accounts_to_base_tier(apps, schema_editor) -> None:
    Tier = apps.get_model("loyalty", "Tier")
    PointsAccount = apps.get_model("loyalty", "PointsAccount")
    TierChange = apps.get_model("loyalty", "TierChange")
    base = Tier.objects.filter(threshold__lte=0).order_by("-rank").first()
    if base is None:
        return
    now = timezone.now()
    accounts = PointsAccount._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TierChange._meta.db_table} "
            "(account_id, from_tier_id, to_tier_id, figure, reason, changed_at) "
            f"SELECT id, NULL, %s, 0, 'enrolment', %s FROM {accounts} WHERE tier_id IS NULL",
            [base.pk, now],
        )
    PointsAccount.objects.filter(tier__isnull=True).update(tier=base, tier_since=now)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0012_kpi_rollups_ledger_order_index")]

    operations = [migrations.RunPython(accounts_to_base_tier, migrations.RunPython.noop)]
