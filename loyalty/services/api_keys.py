"""Partners' API keys: created (the key is shown once), changed, revoked."""

from __future__ import annotations

import datetime as dt
from typing import cast

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from members.models import User

from .. import process_cache
from ..audit.models import AuditAction
from ..audit.services import audit_record, change
from ..errors import ValidationFailed
from ..models import Partner
from ..partner_api.models import ApiScope, PartnerAPIKey


def _checked_scopes(scopes) -> list[str]:
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ValidationFailed(
            _("Unknown scopes: %(scopes)s.") % {"scopes": ", ".join(unknown)}, field="scopes"
        )
    if not scopes:
        raise ValidationFailed(_("Choose at least one scope."), field="scopes")
    return sorted(set(scopes))


@transaction.atomic
def api_key_create(
    *,
    partner: Partner,
    name: str,
    scopes: list[str],
    expires_at: dt.datetime | None = None,
    created_by: User | None = None,
) -> tuple[PartnerAPIKey, str]:
    """A new key for the partner; returns the record and the key, which is stored only hashed:
    show it to the person now, it cannot be read back."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Give the key a name, e.g. the till or system using it."))
    record, key = PartnerAPIKey.objects.create_key(
        partner=partner,
        name=name[:50],
        scopes=_checked_scopes(scopes),
        expiry_date=expires_at,
        created_by=created_by,
    )
    record = cast(PartnerAPIKey, record)  # the library's manager is typed for its base
    audit_record(
        actor=created_by,
        action=AuditAction.API_KEY_CREATED,
        obj=record,
        description=gettext_noop("API key %(prefix)s created for %(partner)s"),
        params={"prefix": record.prefix, "partner": partner.name},
        changes={  # never the key itself: only its prefix is kept anywhere
            "partner": change(None, partner),
            "name": change(None, record.name),
            "scopes": change(None, record.scopes),
            "expiry_date": change(None, record.expiry_date),
        },
    )
    return record, key


@transaction.atomic
def api_key_revoke(*, api_key: PartnerAPIKey, by: User | None = None) -> PartnerAPIKey:
    """From now on the key is refused (401); a revocation cannot be undone."""
    revoked = PartnerAPIKey.objects.filter(pk=api_key.pk, revoked=False).update(revoked=True)
    process_cache.changed()  # every process forgets the key it keeps in memory
    api_key.refresh_from_db()
    if revoked:
        audit_record(
            actor=by,
            action=AuditAction.API_KEY_REVOKED,
            obj=api_key,
            description=gettext_noop("API key %(prefix)s of %(partner)s revoked"),
            params={"prefix": api_key.prefix, "partner": api_key.partner.name},
            changes={"revoked": change(False, True)},
        )
    return api_key
