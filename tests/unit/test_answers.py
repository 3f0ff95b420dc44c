"""policy.answers: the requester's signed answer links and what an answer may change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from incident_ops.model import Ticket
from incident_ops.policy.answers import (
    Claim,
    LinkProblem,
    answer_comment,
    claims_for,
    judge,
    sign,
    verify,
)

NOW = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)
SECRET = "s3cret-for-tests"


def waiting(**changes) -> Ticket:
    ticket = Ticket(id="42", subject="打印机", status="resolved", priority="medium",
                    created=NOW - timedelta(days=1), updated=NOW,
                    confirmation="pending", confirmation_asked_at=NOW.replace(microsecond=0))
    return replace(ticket, **changes)


def test_a_link_round_trips_and_is_bound_to_its_ticket_answer_and_round():
    fixed, not_fixed = claims_for("42", NOW, timedelta(days=14))
    assert (fixed.answer, not_fixed.answer) == ("fixed", "not-fixed")
    assert fixed.asked == int(NOW.timestamp())
    assert fixed.expires == int((NOW + timedelta(days=14)).timestamp())
    token = sign(SECRET, not_fixed)
    assert verify(SECRET, token, NOW) == not_fixed
    assert verify(SECRET, token, NOW).confirmation == "rejected"
    assert sign(SECRET, fixed) != token


@pytest.mark.parametrize("alter", [
    lambda t: t[:-2] + ("AB" if not t.endswith("AB") else "CD"),  # the signature
    lambda t: "eyJ2IjoxLCJ0IjoiNDMi" + t[20:],  # the payload (another ticket)
    lambda t: t.split(".")[0] + "." + sign("another deployment", claims_for(
        "42", NOW, timedelta(days=1))[1]).split(".")[1],  # another secret's signature
])
def test_an_altered_or_foreign_link_is_refused_as_forged(alter):
    token = sign(SECRET, claims_for("42", NOW, timedelta(days=14))[1])
    with pytest.raises(LinkProblem) as problem:
        verify(SECRET, alter(token), NOW)
    assert problem.value.kind == "forged"


@pytest.mark.parametrize("token", ["", "abc", "abc.", ".abc", "x" * 2000])
def test_a_broken_link_is_malformed(token):
    with pytest.raises(LinkProblem) as problem:
        verify(SECRET, token, NOW)
    assert problem.value.kind in ("malformed", "forged")


def test_an_expired_link_says_when_it_expired():
    claim = Claim("42", "fixed", int(NOW.timestamp()), int(NOW.timestamp()) + 60)
    token = sign(SECRET, claim)
    assert verify(SECRET, token, NOW + timedelta(seconds=59)) == claim
    with pytest.raises(LinkProblem) as problem:
        verify(SECRET, token, NOW + timedelta(seconds=60))
    assert problem.value.kind == "expired" and "2026-12-05 09:31 UTC" in str(problem.value)


def test_signing_refuses_an_empty_secret_and_an_unknown_answer():
    with pytest.raises(ValueError):
        sign("", claims_for("42", NOW, timedelta(days=1))[0])
    with pytest.raises(ValueError, match="unknown answer"):
        sign(SECRET, Claim("42", "maybe", 1, 2))


def test_only_a_ticket_waiting_for_this_round_takes_the_answer():
    claim = claims_for("42", NOW, timedelta(days=14))[1]
    assert judge(waiting(), claim).accept
    answered = judge(waiting(confirmation="confirmed"), claim)
    assert (answered.accept, answered.reason, answered.current) == \
        (False, "answered", "confirmed")
    assert judge(waiting(confirmation="rejected", status="closed"), claim).reason == "answered"
    assert judge(waiting(status="closed"), claim).reason == "closed"  # closed unanswered
    later = NOW + timedelta(days=3)
    assert judge(waiting(confirmation_asked_at=later.replace(microsecond=0)),
                 claim).reason == "other-round"
    assert judge(waiting(confirmation_asked_at=None, confirmation=None),
                 claim).reason == "not-asked"


def test_the_desk_comment_carries_the_answer_and_the_requesters_words():
    claim = claims_for("42", NOW, timedelta(days=14))[1]
    text = answer_comment(claim, "  还是不行\nstill broken  " + "x" * 5000, "link sent to a@b")
    assert "未解决 / not fixed" in text and "still broken" in text and "a@b" in text
    assert len(text) < 2400  # the comment is cut
    assert "留言" not in answer_comment(claim, "   ", "x")


def test_only_a_confirmation_request_gets_links_and_they_verify():
    from incident_ops.airflow.web.answer_links import AnswerSettings, link_renderer
    from incident_ops.policy.plan import Notice

    loads = []

    def load():
        loads.append(1)
        return AnswerSettings(SECRET, timedelta(days=3))

    render = link_renderer("http://af.example:8080/", load)
    assert render(Notice("bounce", ("a@b",), {"id": "42"})) == {}
    assert loads == []  # other pipelines never read the connection
    links = render(Notice("confirmation_request", ("a@b",),
                          {"id": "42", "asked_at": NOW.isoformat()}))["answer_links"]
    assert set(links) == {"fixed", "not-fixed"}
    prefix = "http://af.example:8080/incident-ops/answer/"
    assert all(url.startswith(prefix) for url in links.values())
    claim = verify(SECRET, links["fixed"].removeprefix(prefix), NOW)
    assert (claim.ticket_id, claim.answer, claim.asked) == ("42", "fixed", int(NOW.timestamp()))
    render(Notice("confirmation_request", ("a@b",), {"id": "43", "asked_at": NOW.isoformat()}))
    assert loads == [1]  # read once


def test_without_the_connection_the_mail_has_no_links():
    from incident_ops.airflow.web.answer_links import link_renderer
    from incident_ops.notify.compose import render_email
    from incident_ops.policy.plan import Notice

    notice = Notice("confirmation_request", ("a@b",), {
        "id": "42", "asked_at": NOW.isoformat(), "subject": "打印机", "system": "CRM",
        "solution": "重装", "run_id": "r1"})
    assert link_renderer("http://x", lambda: None)(notice) == {}
    html = render_email("confirmation_request", ("a@b",), notice.context, "k").html
    assert "/incident-ops/answer/" not in html and "请回复帮助台" in html
