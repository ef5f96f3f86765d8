"""The two back-office roles, as groups with their permissions (see loyalty/roles.py).

Permissions are created after migrations (post_migrate), so on a fresh database this
migration creates them first; loyalty.roles keeps the groups complete after later migrations.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from loyalty.roles import PROGRAM_MANAGER, SUPPORT_AGENT, sync_role_permissions


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_role_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=[PROGRAM_MANAGER, SUPPORT_AGENT]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0002_schedules"),
        ("members", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
