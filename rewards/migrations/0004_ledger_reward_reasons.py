"""The ledger entries of redemptions and their cancellations get the reward reason keys, with
the reward's name in both languages, where the stored text is one the system wrote.

Patterns copied, not imported (see loyalty 0010); the demo's "Beloning ingewisseld" counts too.
"""

from django.db import migrations

REWARD = "Reward: %(reward)s"
REWARD_CANCELLED = "Cancelled reward: %(reward)s"
BATCH = 2000


def _texts(prefixes, names):
    return {prefix + name for prefix in prefixes for name in names if name}


def ledger_reward_reasons(apps, schema_editor):
    LedgerEntry = apps.get_model("loyalty", "LedgerEntry")
    Redemption = apps.get_model("rewards", "Redemption")
    rows = (
        Redemption.objects.values_list(
            "ledger_entry_id", "refund_entry_id", "reward__name_nl", "reward__name_en"
        )
        .order_by("pk")
        .iterator(chunk_size=BATCH)
    )
    by_entry = {}
    for entry_id, refund_entry_id, name_nl, name_en in rows:
        names = {"nl": name_nl, "en": name_en}
        if entry_id:
            texts = _texts(("Reward: ", "Beloning: "), names.values()) | {"Beloning ingewisseld"}
            by_entry[entry_id] = (REWARD, names, texts)
        if refund_entry_id:
            texts = _texts(("Cancelled reward: ", "Geannuleerde beloning: "), names.values())
            by_entry[refund_entry_id] = (REWARD_CANCELLED, names, texts)
    ids = sorted(by_entry)
    for start in range(0, len(ids), BATCH):
        changed = []
        entries = LedgerEntry.objects.filter(pk__in=ids[start : start + BATCH], reason_key="")
        for pk, reason in entries.values_list("pk", "reason"):
            key, names, texts = by_entry[pk]
            if reason in texts:
                params = {"reward": {code: name for code, name in names.items() if name}}
                changed.append(LedgerEntry(pk=pk, reason_key=key, reason_params=params))
        LedgerEntry.objects.bulk_update(changed, ["reason_key", "reason_params"])


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0010_ledger_reasons_to_keys"),
        ("rewards", "0003_redemption_partner"),
    ]

    operations = [
        migrations.RunPython(ledger_reward_reasons, migrations.RunPython.noop, elidable=True),
    ]
