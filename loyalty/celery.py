"""The Celery app: configured from Django settings (CELERY_* names), tasks autodiscovered."""

import logging
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")

logger = logging.getLogger(__name__)

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _memory_policy(**_kwargs) -> None:
    # In the main worker process, before it forks its pool: the children inherit it.
    from django.conf import settings

    from loyalty.memory import keep_freed_memory

    if settings.WORKER_KEEP_FREED_MEMORY:
        applied = keep_freed_memory()
        logger.info("worker memory policy: %s", "keep freed memory" if applied else "no glibc")
