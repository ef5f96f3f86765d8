"""Partners' purchase ids are opaque codes: compare them bytewise ("C" collation) on PostgreSQL.

A linguistic collation makes the (partner, external_id) unique index several times slower to
build and to probe at 10M purchases, and its ordering means nothing for such ids. SQLite
compares bytewise already.
"""

from django.db import migrations


def to_c_collation(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ("loyalty_purchase", "loyalty_refund"):
        schema_editor.execute(
            f'ALTER TABLE {table} ALTER COLUMN external_id TYPE varchar(100) COLLATE "C"'
        )


def to_default_collation(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ("loyalty_purchase", "loyalty_refund"):
        schema_editor.execute(
            f'ALTER TABLE {table} ALTER COLUMN external_id TYPE varchar(100) COLLATE "default"'
        )


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0003_roles")]
    operations = [migrations.RunPython(to_c_collation, to_default_collation)]
