"""What each outcome of an action means, in words an operator reads (plan page, ops view, run
summary). The codes stay what the engine records (``engine.outcomes``: the plan JSON, the
watermark and the tests read them); wherever a code is shown, its words go with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class OutcomeWords:
    zh: str
    label: str  # a few English words, shown with the code: "dropped (no longer applies)"
    short: str  # why, in the run summary's parentheses
    explained: str  # the legend's sentence


OUTCOME_WORDS: dict[str, OutcomeWords] = {
    "done": OutcomeWords("已完成", "done", "carried out by this run",
                         "Carried out by this run: the desk change made, its messages sent."),
    "skipped": OutcomeWords(
        "已做过", "already done", "done before: not repeated",
        "Already done by an earlier attempt or run (its key is on the ticket): nothing is "
        "done twice."),
    "stale": OutcomeWords(
        "工单已被修改", "changed since read", "changed by a person since read: left for "
        "the next run",
        "Someone changed the ticket after the plan read it: nothing was written; the next "
        "run reads it again and decides afresh."),
    "dropped": OutcomeWords(
        "不再适用", "no longer applies", "changed since they were decided: left for the "
        "next run",
        "An earlier run decided it but never wrote it, and the ticket changed since (or is "
        "gone): it is not done; this run's plan read the change and decided afresh."),
    "failed": OutcomeWords(
        "失败", "failed", "the desk or a follow-up failed: see the message",
        "The desk refused or could not be reached (the message says which): the run turns "
        "red; what another attempt may cure is tried again by the next attempt or run."),
    "waiting": OutcomeWords(
        "等待主单", "waiting for its master", "their master was not closed: the family "
        "closes together later",
        "A duplicate whose master was not closed in this run: the family closes together "
        "in a later run."),
    "deferred": OutcomeWords(
        "留待下次运行", "left for the next run", "another run held the lease: the next "
        "run does them",
        "Another run of the same pipeline was applying (it held the lease): nothing was "
        "applied; the next run does it."),
    "undelivered": OutcomeWords(
        "消息待重发", "message owed (will be retried)", "the desk change is made; a "
        "message did not go out and is sent again by the next attempt or run",
        "The desk change is made; a message did not go out (the mail or SMS server "
        "refused for now): it stays in the outbox and is sent again, under the same key, "
        "by the next attempt or run."),
    "planned": OutcomeWords(
        "仅计划", "planned, not applied", "a dry run, or apply did not run",
        "Decided but not applied: a dry run, or the apply task did not run."),
}


def words(outcome: str) -> OutcomeWords:
    return OUTCOME_WORDS.get(outcome, OutcomeWords(outcome, outcome, "", ""))


def counted(outcome: str, n: int) -> str:
    """``44 dropped (changed since they were decided: left for the next run)``."""
    why = words(outcome).short
    return f"{n} {outcome} ({why})" if why and outcome != "done" else f"{n} {outcome}"


def legend(outcomes: Iterable[str]) -> list[tuple[str, OutcomeWords]]:
    """The outcomes that appear, each with its words, in the order of ``OUTCOME_WORDS``
    (what is not an outcome, such as a finding's severity, is left out)."""
    present = set(outcomes)
    return [(o, w) for o, w in OUTCOME_WORDS.items() if o in present]
