"""Existing ledger reasons become keys with parameters where the text is one the system wrote, in
either language (and the demo's wording); the points name gets its English value.

The patterns are copied here, not imported, so the migration keeps meaning what it meant when
the code moves on. Reward reasons are converted by the rewards app's migration, which knows the
rewards' names in both languages.
"""

from django.db import migrations

PURCHASE = "Purchase %(id)s"
REFUND = "Refund of purchase %(id)s"
POINTS_EXPIRED = "Points expired"

# (key, kind, the texts before the purchase's external id, in English, Dutch and the demo's)
PURCHASE_REASONS = [
    (PURCHASE, "earn", ("Purchase ", "Aankoop ")),
    (
        REFUND,
        "reversal",
        ("Refund of purchase ", "Terugbetaling van aankoop ", "Retour van aankoop "),
    ),
]
EXPIRED_TEXTS = ["Points expired", "Vervallen punten", "Punten verlopen"]
BATCH = 2000


def ledger_reasons_to_keys(apps, schema_editor):
    LedgerEntry = apps.get_model("loyalty", "LedgerEntry")
    LedgerEntry.objects.filter(reason_key="", kind="expire", reason__in=EXPIRED_TEXTS).update(
        reason_key=POINTS_EXPIRED
    )
    for key, kind, prefixes in PURCHASE_REASONS:
        rows = (
            LedgerEntry.objects.filter(reason_key="", kind=kind, purchase__isnull=False)
            .values_list("pk", "reason", "purchase__external_id")
            .order_by("pk")
            .iterator(chunk_size=BATCH)
        )
        changed = []
        for pk, reason, external_id in rows:
            if any(reason == prefix + external_id for prefix in prefixes):
                changed.append(
                    LedgerEntry(pk=pk, reason_key=key, reason_params={"id": external_id})
                )
            if len(changed) == BATCH:
                LedgerEntry.objects.bulk_update(changed, ["reason_key", "reason_params"])
                changed = []
        LedgerEntry.objects.bulk_update(changed, ["reason_key", "reason_params"])


def keys_to_reasons(apps, schema_editor):
    """The stored text was kept: going back only forgets the keys."""
    LedgerEntry = apps.get_model("loyalty", "LedgerEntry")
    LedgerEntry.objects.exclude(reason_key="").update(reason_key="", reason_params=None)


def points_name_per_language(apps, schema_editor):
    """`points_name` is now the Dutch name: the untouched English default becomes "punten"; a
    name the program chose stays what English pages showed until now."""
    ProgramSettings = apps.get_model("loyalty", "ProgramSettings")
    for program in ProgramSettings.objects.all():
        if program.points_name == "points":
            program.points_name, program.points_name_en = "punten", "points"
        elif program.points_name != "punten":
            program.points_name_en = program.points_name
        program.save(update_fields=["points_name", "points_name_en"])


def points_name_back(apps, schema_editor):
    pass  # the Dutch name stays in points_name; the English one goes with its column


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0009_reasons_by_key_points_name_per_language"),
    ]

    operations = [
        migrations.RunPython(ledger_reasons_to_keys, keys_to_reasons, elidable=True),
        migrations.RunPython(points_name_per_language, points_name_back, elidable=True),
    ]
