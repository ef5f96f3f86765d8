"""Snapshot rows keyed by (run, member) and (run, segment, member) instead of a serial id.

Django does not migrate a table to a composite primary key itself, so the state changes are
declared and the tables changed here: on PostgreSQL in place (the unique constraint on those
columns becomes the primary key), on SQLite by rebuilding the table, rows kept."""

from django.db import migrations, models

TABLES = [
    # (model, old unique constraint, key columns)
    ("MemberScore", "one_score_per_run", ["run_id", "member_id"]),
    ("RuleSegmentMember", "one_rule_membership_per_run", ["run_id", "segment_id", "member_id"]),
]


def key_tables(apps, schema_editor):
    quote = schema_editor.quote_name
    for model_name, unique, key in TABLES:
        model = apps.get_model("segmentation", model_name)
        table = model._meta.db_table
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(unique)}")
            schema_editor.execute(f"ALTER TABLE {quote(table)} DROP COLUMN id")
            columns = ", ".join(quote(column) for column in key)
            schema_editor.execute(f"ALTER TABLE {quote(table)} ADD PRIMARY KEY ({columns})")
            continue
        old = f"{table}__old"
        schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
        schema_editor.create_model(model)  # the new state: composite primary key, no id
        columns = ", ".join(quote(field.column) for field in model._meta.local_concrete_fields)
        schema_editor.execute(
            f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {quote(old)}"
        )
        schema_editor.execute(f"DROP TABLE {quote(old)}")


class Migration(migrations.Migration):
    dependencies = [
        ("segmentation", "0005_rule_membership_storage"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="memberscore", name="one_score_per_run"),
                migrations.RemoveConstraint(
                    model_name="rulesegmentmember", name="one_rule_membership_per_run"
                ),
                migrations.RemoveField(model_name="memberscore", name="id"),
                migrations.RemoveField(model_name="rulesegmentmember", name="id"),
                migrations.AddField(
                    model_name="memberscore",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "run",
                        "member",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                migrations.AddField(
                    model_name="rulesegmentmember",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "run",
                        "segment",
                        "member",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
        ),
        migrations.RunPython(key_tables, elidable=False),
        migrations.AlterModelOptions(
            name="rulesegmentmember",
            options={
                "verbose_name": "rule-based segment membership",
                "verbose_name_plural": "rule-based segment memberships",
            },
        ),
    ]
