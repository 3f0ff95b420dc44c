"""policy.answers: the requester's signed answer links and what an answer may change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from incident_ops.model import Ticket
from incident_ops.policy.answers import (
    Claim,
    Keyring,
    LinkProblem,
    PreviousSecret,
    answer_comment,
    claims_for,
    judge,
    previous_secrets,
    retire_time,
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


# ------------------------------------------------------------------ rotating the secret
OLD, NEW = "old-secret-before-rotation", "new-secret-after-rotation"
RETIRE = NOW + timedelta(days=15)  # the rotation was at NOW: 14-day links, and a day more


def rotated() -> Keyring:
    return Keyring(NEW, (PreviousSecret(OLD, RETIRE),))


def test_links_are_signed_with_the_newest_secret():
    claim = claims_for("42", NOW, timedelta(days=14))[0]
    token = sign(rotated(), claim)
    assert token == sign(NEW, claim)
    assert verify(NEW, token, NOW) == claim
    with pytest.raises(LinkProblem, match="signature"):
        verify(OLD, token, NOW)


def test_a_link_signed_before_the_rotation_works_until_its_secret_retires():
    claim = claims_for("42", NOW, timedelta(days=30))[1]
    before = sign(OLD, claim)  # a mail sent before the rotation
    assert verify(rotated(), before, NOW) == claim
    assert verify(rotated(), before, RETIRE - timedelta(seconds=1)) == claim
    with pytest.raises(LinkProblem) as problem:
        verify(rotated(), before, RETIRE)
    assert problem.value.kind == "retired"
    assert str(problem.value) == ("the key that signed the link was retired on "
                                  "2026-12-20 09:30 UTC")


def test_a_retired_link_that_has_also_expired_says_expired():
    claim = claims_for("42", NOW, timedelta(days=14))[1]
    with pytest.raises(LinkProblem) as problem:
        verify(rotated(), sign(OLD, claim), RETIRE)
    assert problem.value.kind == "expired"


def test_a_secret_dropped_from_the_keyring_or_never_in_it_is_forged():
    claim = claims_for("42", NOW, timedelta(days=14))[1]
    for keys in (Keyring(NEW), rotated()):
        with pytest.raises(LinkProblem) as problem:
            verify(keys, sign("another deployment", claim), NOW)
        assert problem.value.kind == "forged"
    with pytest.raises(LinkProblem) as problem:
        verify(Keyring(NEW), sign(OLD, claim), NOW)
    assert problem.value.kind == "forged"


def test_retire_after_is_a_date_through_which_links_work_or_a_time_with_its_zone():
    assert retire_time("2026-12-31") == datetime(2027, 1, 1, tzinfo=UTC)
    assert retire_time("2026-12-31T18:00+08:00") == datetime(2026, 12, 31, 10, tzinfo=UTC)
    for bad, said in (("2026-12-31T18:00", "no time zone"), ("next week", "not an ISO")):
        with pytest.raises(ValueError, match=said):
            retire_time(bad)


def test_previous_secrets_are_read_from_the_connection_extra_and_errors_name_no_secret():
    assert previous_secrets(None) == ()
    assert previous_secrets([{"secret": OLD, "retire_after": "2026-12-19"}]) == (
        PreviousSecret(OLD, datetime(2026, 12, 20, tzinfo=UTC)),)
    for raw, said in (
            ("old-secret-before-rotation", "must be a list"),
            ([{"secret": OLD}], "entry 1 needs"),
            ([{"secret": OLD, "retire_after": "2026-12-19"},
              {"secret": "", "retire_after": "2026-12-19"}], "entry 2 needs"),
            ([{"secret": OLD, "retire_after": "soon"}], "entry 1: retire_after 'soon'")):
        with pytest.raises(ValueError, match=said) as error:
            previous_secrets(raw)
        assert OLD not in str(error.value)
    with pytest.raises(ValueError, match="previous secret is the current"):
        Keyring(OLD, previous_secrets([{"secret": OLD, "retire_after": "2026-12-19"}]))


def test_no_secret_shows_in_a_repr():
    from incident_ops.airflow.web.answer_links import AnswerSettings

    keys = rotated()
    shown = repr(keys) + repr(AnswerSettings(NEW, timedelta(days=3), keys.previous))
    assert "PreviousSecret(retire_after=" in shown
    assert NEW not in shown and OLD not in shown


def test_the_mail_links_are_signed_with_the_current_secret_after_a_rotation():
    from incident_ops.airflow.web.answer_links import AnswerSettings, link_renderer
    from incident_ops.policy.plan import Notice

    settings = AnswerSettings(NEW, timedelta(days=3), rotated().previous)
    links = link_renderer("http://af", lambda: settings)(Notice(
        "confirmation_request", ("a@b",), {"id": "42", "asked_at": NOW.isoformat()})
    )["answer_links"]
    token = links["fixed"].rsplit("/", 1)[1]
    assert verify(NEW, token, NOW).answer == "fixed"
    with pytest.raises(LinkProblem):
        verify(OLD, token, NOW)
