"""``reports.yaml`` as a validated object: recipients by period, language, detail limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incident_ops.config import load_yaml, timezone
from incident_ops.reference import ConfigError, Contacts
from incident_ops.reports.labels import LANGUAGES
from incident_ops.reports.periods import KINDS

LANGUAGE_ENV = "INCIDENT_OPS_REPORT_LANGUAGE"


@dataclass(frozen=True)
class Audience:
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    cc_roles: tuple[str, ...] = ()

    def addresses(self, contacts: Contacts) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(to, cc): literal addresses plus the e-mail of everyone in the roles, deduplicated."""
        def resolve(literal: tuple[str, ...], roles: tuple[str, ...]) -> list[str]:
            found = list(literal)
            for role in roles:
                found += [p.email for p in contacts.role(role) if p.email]
            return list(dict.fromkeys(found))

        to = resolve(self.to, self.roles)
        cc = [a for a in resolve(self.cc, self.cc_roles) if a not in to]
        return tuple(to), tuple(cc)


@dataclass(frozen=True)
class ReportSettings:
    timezone: str = "Asia/Shanghai"
    language: str = "zh"
    smtp_conn_id: str = "smtp_default"
    top_n: int = 10
    list_limit: int = 200
    email_rows: int = 20
    detail_rows_max: int = 100_000
    sla_goal_pct: float = 90.0
    periods: dict[str, Audience] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportSettings:
        try:
            periods = {}
            for kind, spec in (data.get("periods") or {}).items():
                if kind not in KINDS:
                    raise ConfigError(f"reports.yaml: periods.{kind}: not one of {KINDS}")
                spec = spec or {}
                periods[kind] = Audience(**{k: tuple(str(v) for v in spec.get(k) or ())
                                            for k in ("to", "cc", "roles", "cc_roles")})
            language = str(os.environ.get(LANGUAGE_ENV) or data.get("language", "zh"))
            if language not in LANGUAGES:
                raise ConfigError(f"reports.yaml: language {language!r} is not one of "
                                  f"{LANGUAGES}")
            return cls(timezone=timezone(), language=language,
                       smtp_conn_id=str(data.get("smtp_conn_id", "smtp_default")),
                       top_n=int(data.get("top_n", 10)),
                       list_limit=int(data.get("list_limit", 200)),
                       email_rows=int(data.get("email_rows", 20)),
                       detail_rows_max=int(data.get("detail_rows_max", 100_000)),
                       sla_goal_pct=float(data.get("sla_goal_pct", 90)), periods=periods)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"reports.yaml: {exc}") from exc

    def audience(self, kind: str) -> Audience:
        return self.periods.get(kind, Audience())


def load_report_settings(directory: Path | None = None) -> ReportSettings:
    return ReportSettings.from_dict(load_yaml("reports.yaml", directory))
