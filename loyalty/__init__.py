"""The project package and the program core.

Project plumbing, which every app may import and which imports no domain module (checked by
tests/test_architecture.py): `settings`, `celery`, `errors` (the one ApplicationError family),
`pgcopy` (binary COPY), `process_cache` (configuration kept in memory), `rawsql` (the purchase path's SQL text), `memory` (the worker's memory policy), `outbox` (side effects after
commit), `partner_api` (the REST API's keys, scopes, errors, pagination and idempotency),
`events` (domain events), `audit` (the audit log of staff changes), `admin_site`,
`admin_readonly`, `admin_singleton`, `checks`.
Everything else here is the program core (settings, partners, purchases, earning, tiers, the
ledger, KPIs), which only the apps to the right of `members` use.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
