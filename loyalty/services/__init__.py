"""Writes of the program core, one module per seam: the points ledger (`ledger`), purchases
and refunds (`purchases`), tiers (`tiers`), the ledger's consistency check (`consistency`) and
partners' API keys (`api_keys`). Callers import the services from here."""

from .api_keys import api_key_create, api_key_revoke
from .consistency import ledger_consistency_check
from .ledger import (
    account_lock,
    birthday_points_credit,
    birthday_points_credit_all,
    points_adjust,
    points_credit,
    points_debit,
    points_expire,
)
from .purchases import (
    EARNING_STATUSES,
    PurchaseInput,
    PurchaseResult,
    earning_preview,
    money,
    purchase_record,
    purchase_refund,
    purchases_record_batch,
)
from .tiers import qualifying_tier, rolling_figure, tier_recalculate, tiers_recalculate_all

__all__ = [
    "EARNING_STATUSES",
    "PurchaseInput",
    "PurchaseResult",
    "account_lock",
    "api_key_create",
    "api_key_revoke",
    "birthday_points_credit",
    "birthday_points_credit_all",
    "earning_preview",
    "ledger_consistency_check",
    "money",
    "points_adjust",
    "points_credit",
    "points_debit",
    "points_expire",
    "purchase_record",
    "purchase_refund",
    "purchases_record_batch",
    "qualifying_tier",
    "rolling_figure",
    "tier_recalculate",
    "tiers_recalculate_all",
]
