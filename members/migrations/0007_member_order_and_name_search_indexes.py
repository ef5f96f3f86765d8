"""The members and consent records lists' order by an index, and a member search by part of a name, e-mail address
by trigram indexes (PostgreSQL only; SQLite scans, which is fine at its sizes).

The trigram indexes are on the expressions the admin's `icontains` search compares,
`UPPER(column::text) LIKE UPPER('%…%')`, so PostgreSQL uses them for a leading wildcard. They
are built CONCURRENTLY: a million members keep enrolling while they are built."""

from django.db import migrations, models

TRIGRAM_COLUMNS = ["first_name", "last_name", "email"]


def _index_name(column: str) -> str:
    return f"member_{column}_trgm"


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in TRIGRAM_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_index_name(column)} ON members_member "
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in TRIGRAM_COLUMNS:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_index_name(column)}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("members", "0006_invitation_opt_out"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="member",
            index=models.Index(fields=["-created_at", "-id"], name="member_created_idx"),
        ),
        migrations.AddIndex(
            model_name="consentrecord",
            index=models.Index(fields=["-recorded_at", "-id"], name="consent_recorded_idx"),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
