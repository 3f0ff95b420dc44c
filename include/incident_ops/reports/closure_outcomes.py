"""What the automation did to a ticket, read from what the engine wrote on it: the rule id
of its ``automation`` stamp and the kinds of its idempotency keys (``policy.rules``, the
contract between the closure policy and the reports), never a comment's or subject's
wording.

Every version of the engine wrote the stamp as ``"<step> <rule> · run <id>"`` and created a
reopened copy under a ``reopen:`` key, so tickets of earlier runs classify the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from incident_ops.model import CONFIRMATION_CONFIRMED, UNSUCCESSFUL
from incident_ops.policy import rules

# Closure outcomes (the KPI), in display order; the closure rule each comes from.
OUTCOME_RULES = {
    "auto": rules.CLOSE_AUTO_SOURCE,  # 100.7.1 monitoring / auto-transfer
    "confirmed": rules.CLOSE_CONFIRMED,  # 100.7.2 -> 100.7.1 requester confirmed
    "no_answer": rules.CLOSE_NO_ANSWER,  # 100.7.2 policy closed without an answer
    "support": rules.CLOSE_HANDLED_BY_SUPPORT,  # 100.7.4
    "cascade": rules.CLOSE_DUPLICATE_CASCADE,  # 100.7.1 duplicates closed with their master
}
OUTCOMES = ("auto", "confirmed", "no_answer", "support", "cascade", "reopened", "manual")


def on_uniques(values: pd.Series, test: Any) -> np.ndarray:
    """``test`` (a vectorised predicate on strings) run once per distinct value, mapped back.

    Stamps like "100.7.1 close.auto-source · run X" repeat for every ticket a run closed,
    so there are far fewer distinct values than rows.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=bool)
    answers = np.asarray(test(pd.Series(uniques, dtype="str")).fillna(False), dtype=bool)
    return answers[codes]


def stamped(automation: pd.Series, rule: str) -> np.ndarray:
    """Which tickets' ``automation`` stamp names ``rule``."""
    return on_uniques(automation, lambda u: u.map(rules.stamp_rule) == rule)


def bounced(automation: pd.Series, bounces: pd.Series) -> pd.Series:
    """Tickets 100.6 bounced: a bounce key kept (``bounces``), or the last stamp says so."""
    return (bounces > 0) | stamped(automation, rules.COMPLETENESS)


def reopen_copies(keys: pd.Series) -> np.ndarray:
    """Tickets created by 100.7.3 as the reopened copy of another (by their key's kind)."""
    return on_uniques(keys, lambda u: u.map(rules.key_kind) == rules.REOPEN_KEY)


def closure_outcomes(frame: pd.DataFrame, automation: pd.Series, closed: pd.Series
                     ) -> pd.Series:
    """The outcome (``OUTCOMES``) of each ticket closed (``closed``): 100.7.3 first (the
    close code), then the closure rule of its stamp, then a confirmation given by hand;
    ``manual`` when the automation left no mark."""
    auto = automation[closed]

    def by(outcome: str) -> np.ndarray:
        return stamped(auto, OUTCOME_RULES[outcome])

    conditions = [(frame["close_code"][closed] == UNSUCCESSFUL).to_numpy(),
                  by("cascade"), by("auto"),
                  by("confirmed") | (frame["confirmation"][closed] ==
                                     CONFIRMATION_CONFIRMED).to_numpy(),
                  by("no_answer"), by("support")]
    names = np.array(["reopened", "cascade", "auto", "confirmed", "no_answer", "support",
                      "manual"], dtype=object)
    chosen = np.select(conditions, list(range(len(names) - 1)), default=len(names) - 1)
    return pd.Series(names[chosen], index=auto.index, dtype=object)
