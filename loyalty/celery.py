"""The Celery app: configured from Django settings (CELERY_* names), tasks autodiscovered."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _memory_policy(**_kwargs) -> None:
    # In the main worker process, before it forks its pool: the children inherit it.
    from django.conf import settings

    from loyalty.memory import keep_freed_memory

    if settings.WORKER_KEEP_FREED_MEMORY:
        keep_freed_memory()
