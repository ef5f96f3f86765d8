"""The participation conditions enrolment checks, supplied by the program core.

`members` sits left of `loyalty` and may not import it, yet the minimum age and the
excluded domains are program settings. `loyalty` registers a provider here in its
AppConfig.ready() (inversion, like the admin's autodiscovery); without one, nothing is
restricted beyond the terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParticipationConditions:
    minimum_age: int = 0
    excluded_domains: frozenset[str] = field(default_factory=frozenset)

    def domain_excluded(self, email: str) -> bool:
        domain = email.rsplit("@", 1)[-1].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.excluded_domains)


_provider: Callable[[], ParticipationConditions] | None = None


def register_provider(provider: Callable[[], ParticipationConditions]) -> None:
    global _provider
    _provider = provider


def current_conditions() -> ParticipationConditions:
    return _provider() if _provider is not None else ParticipationConditions()
