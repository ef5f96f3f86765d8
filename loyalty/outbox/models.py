"""One row per side effect that must happen after a commit (see `loyalty.outbox`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    """A Celery task call recorded with the change that causes it.

    `claimed_at` is a short lease taken by whoever hands the message to the broker, so the
    after-commit hand-off and the sweep never send it twice at once; `dispatched_at` is set once
    the broker accepted it (from then on Celery's late acknowledgement carries it).
    """

    task = models.CharField(_("task"), max_length=200)
    args = models.JSONField(_("arguments"), default=list, blank=True)
    kwargs = models.JSONField(_("keyword arguments"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("handed to the broker at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sweep reads only what is pending: a small partial index, however many sent.
            models.Index(
                fields=["created_at"],
                condition=Q(dispatched_at__isnull=True),
                name="outbox_pending",
            ),
            models.Index(fields=["dispatched_at"], name="outbox_dispatched"),
        ]

    def __str__(self) -> str:
        return gettext("Task %(task)s of %(date)s") % {
            "task": self.task,
            "date": date_format(timezone.localtime(self.created_at), "j F Y H:i:s"),
        }

    @property
    def is_pending(self) -> bool:
        return self.dispatched_at is None
