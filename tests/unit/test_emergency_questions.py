"""The emergency's questions to people (policy.questions): who answers, who is told and when,
which answers go back. Pure: a brief, a question and the clock in, plans and problems out."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from emergency_sample import START, brief

from incident_ops.policy import emergency as em
from incident_ops.policy import questions as qs
from incident_ops.policy.contingency import Cadence
from incident_ops.policy.plan import Plan

EVERY_10_ESCALATE_30 = Cadence(remind_every_minutes=10, escalate_after_minutes=30,
                               max_reminders=4)


def question(kind: str = qs.APPROVE_LEADER, task_id: str = "round_1.approve_leader"
             ) -> qs.Question:
    return qs.Question(task_id=task_id, kind=kind, step="101.4",
                       subject="领导审批 / Leader approval — 第 1 轮 / round 1",
                       link="http://af.example.cn/dags/emergency_response/runs/r/tasks/"
                            f"{task_id}/required_actions")


def chased(cadence: Cadence = EVERY_10_ESCALATE_30) -> em.Brief:
    b = brief()
    return replace(b, plan=replace(b.plan, cadence=cadence))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# ---------------------------------------------------------------------------- who
def test_each_question_is_assigned_to_the_logins_of_its_role():
    b = brief()  # billing: team lead chen.jing; contacts.yaml's leader zheng.gang
    logins = {kind: {u["id"] for u in qs.hitl_users(qs.assignees(b, kind)) or []}
              for kind in qs.WHO_ANSWERS}
    assert logins[qs.APPROVE_LEAD] == {"chen.jing"}
    assert logins[qs.APPROVE_LEADER] == {"zheng.gang"}
    team = {"chen.jing", "zhao.lei", "sun.min", "wang.fang"}  # members with a login
    assert logins[qs.SOLUTION] == logins[qs.STEPS] == team
    assert logins[qs.COVERED] == logins[qs.LIFTED_Q] == team  # the IM is in this team


def test_people_without_a_login_are_told_but_cannot_be_assigned():
    b = brief()
    team = qs.assignees(b, qs.SOLUTION)
    assert "许晴 (账务稽核)" in [c.name for c in team]  # written inline in billing.yaml
    assert "许晴 (账务稽核)" not in [u["name"] for u in qs.hitl_users(team) or []]


def test_a_role_without_any_login_leaves_the_question_open_to_anyone_and_says_so():
    b = brief()
    nobody = replace(b, people={**b.people, qs.LEADERS: tuple(
        replace(c, airflow_user=None) for c in b.people[qs.LEADERS])})
    assert qs.hitl_users(qs.assignees(nobody, qs.APPROVE_LEADER)) is None
    assert "anyone with access may answer" in qs.who_answers_md(nobody, qs.APPROVE_LEADER)
    assert "only they can answer" in qs.who_answers_md(b, qs.APPROVE_LEADER)


def test_the_roles_travel_with_the_brief_through_xcom():
    b = brief()
    again = em.Brief.from_dict(json.loads(json.dumps(b.to_dict(), default=str)))
    assert again.people == b.people and again.tz == b.tz
    assert again.plan.cadence == b.plan.cadence


# --------------------------------------------------------------------------- when
def test_reminders_fall_due_each_interval_up_to_the_cap():
    c = EVERY_10_ESCALATE_30
    assert [qs.reminders_due(c, START, START + minutes(m)) for m in (0, 9.9, 10, 25, 40, 90)] \
        == [0, 0, 1, 2, 4, 4]


def test_the_next_wake_is_the_next_reminder_or_the_escalation_whichever_comes_first():
    c = Cadence(remind_every_minutes=20, escalate_after_minutes=30, max_reminders=2)
    assert qs.next_wake(c, START, START) == START + minutes(20)
    assert qs.next_wake(c, START, START + minutes(21)) == START + minutes(30)
    assert qs.next_wake(c, START, START + minutes(31)) == START + minutes(40)
    assert qs.next_wake(c, START, START + minutes(41)) is None  # all sent: wait for the answer


def test_no_cadence_means_no_wake_at_all():
    assert qs.next_wake(Cadence(None, None, 0), START, START) is None


# --------------------------------------------------------------------------- what
def test_asking_tells_the_assignees_by_mail_and_sms_with_the_link_once():
    b, q = chased(), question()
    plan = qs.decide_ask(b, q, START)
    (action,) = plan.actions
    mail, sms = action.notices
    assert mail.to == ("zheng.gang@ops.example.cn",) and sms.to == ("13800000051",)
    assert mail.context["question"]["link"] == q.link and mail.context["kind"] == "ask"
    assert action.key == qs.decide_ask(b, q, START + minutes(5)).actions[0].key  # one per question
    assert action.key == qs.ask_key(b, q)  # what a retried task looks for on the incident
    other_run = replace(b, run_id="manual__continuation")
    assert qs.decide_ask(other_run, q, START).actions[0].key != action.key


def test_the_plan_says_how_many_were_asked_in_words_that_agree_with_the_number():
    b = chased()
    one = qs.decide_ask(b, question(), START).actions[0]  # the leader: zheng.gang alone
    assert one.reason.endswith("问题已发给 1 人 / question sent to 1 person")
    team = qs.decide_ask(b, question(qs.SOLUTION, "round_1.propose_solution"), START)
    n = len(qs.assignees(b, qs.SOLUTION))
    assert n > 1 and team.actions[0].reason.endswith(
        f"问题已发给 {n} 人 / question sent to {n} people")
    nobody = replace(b, people={**b.people, qs.LEADERS: ()})
    assert qs.decide_ask(nobody, question(), START).actions[0].reason.endswith(
        "问题未发给任何人 / question sent to no one")


def test_a_wake_sends_only_the_latest_reminder_and_the_escalation_once():
    b, q = chased(), question()
    early = qs.decide_wake(b, q, START, START + minutes(10))
    assert [a.rule for a in early.actions] == ["emergency.question-reminder"]
    late = qs.decide_wake(b, q, START, START + minutes(31))  # the wake came late
    rules = [a.rule for a in late.actions]
    assert rules == ["emergency.question-reminder", "emergency.question-timeout"]
    reminder, timeout = late.actions
    assert reminder.notices[0].context["n"] == 3  # the third, not the first three
    # Incident manager and management, the people who should have answered copied.
    assert set(timeout.notices[0].to) == {"incident.manager@ops.example.cn",
                                          "wu.hua@ops.example.cn"}
    assert timeout.notices[0].cc == ("zheng.gang@ops.example.cn",)
    again = qs.decide_wake(b, q, START, START + minutes(45))
    assert again.actions[-1].key == timeout.key  # the same escalation: the engine skips it


def test_every_message_of_a_question_has_its_own_key():
    b, q = chased(), question()
    keys = [qs.decide_ask(b, q, START).actions[0].key]
    for m in (10, 20, 30, 40):
        keys += [a.key for a in qs.decide_wake(b, q, START, START + minutes(m)).actions]
    keys += [qs.decide_sent_back(b, q, ["x"], None, n).actions[0].key for n in (1, 2)]
    # The wake at 40 min plans the escalation again, under the same key: 9 planned, 8 kept.
    assert len(keys) == 9 and len(set(keys)) == 1 + 4 + 1 + 2


def test_question_plans_survive_the_trip_through_xcom():
    b, q = chased(), question()
    for plan in (qs.decide_ask(b, q, START), qs.decide_wake(b, q, START, START + minutes(31)),
                 qs.decide_sent_back(b, q, ["why"], {"id": "zheng.gang"}, 1)):
        again = Plan.from_dict(json.loads(json.dumps(plan.to_dict(), default=str)))
        assert again.to_dict() == plan.to_dict()


def test_a_sent_back_answer_goes_to_whoever_gave_it():
    b = chased()
    q = question(qs.SOLUTION, "round_1.propose_solution")
    plan = qs.decide_sent_back(b, q, ["name the component"], {"id": "zhao.lei", "name": "赵磊"}, 1)
    (mail,) = plan.actions[0].notices  # mail only: the reason does not fit an SMS
    assert mail.to == ("zhao.lei@ops.example.cn",)
    assert mail.context["problems"] == ["name the component"]
    unknown = qs.decide_sent_back(b, q, ["x"], None, 1).actions[0].notices[0]
    assert len(unknown.to) > 1  # nobody named: the whole team hears it


# ---------------------------------------------------------------- checking answers
NOW = START + minutes(120)  # 11:05 in Shanghai; the incident was opened at 08:45


@pytest.mark.parametrize(("chosen", "typed", "problem"), [
    (em.LIFTED, "", "lifting needs the business recovery time"),
    (em.LIFTED, "26/11/2026 10:58", "is not a time in the form YYYY-MM-DD HH:MM"),
    (em.LIFTED, "2026-11-26 25:00", "is not a time in the form"),
    (em.LIFTED, "2026-11-26 11:30", "is in the future"),
    (em.LIFTED, "2026-11-26 08:00", "before the incident was opened"),
    (em.LIFTED, "2026-11-26 10:58", None),
    (em.NOT_LIFTED, "", None),  # not lifted: nothing to fill in
])
def test_the_recovery_time_is_needed_only_when_lifting_and_must_be_a_plausible_time(
        chosen, typed, problem):
    problems = qs.check_answer(brief(), qs.LIFTED_Q, [chosen], {"recovered_at": typed}, NOW)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_a_recovery_time_in_the_minute_the_incident_was_opened_is_not_before_it():
    """The form takes minutes, the desk keeps seconds: opened 08:45:44, recovered "08:45"."""
    b = brief()
    opened = b.incident.created + timedelta(seconds=44)  # 08:45:44 in Shanghai
    b = replace(b, incident=replace(b.incident, created=opened))
    assert qs.check_answer(b, qs.LIFTED_Q, [em.LIFTED], {"recovered_at": "2026-11-26 08:45"},
                           NOW) == []
    (problem,) = qs.check_answer(b, qs.LIFTED_Q, [em.LIFTED],
                                 {"recovered_at": "2026-11-26 08:44"}, NOW)
    assert "before the incident was opened (2026-11-26 08:45" in problem, problem


def test_the_recovery_time_is_read_in_the_deployment_zone():
    in_utc = replace(brief(), tz="UTC")  # 10:58 UTC is after "now" (03:05 UTC)
    assert "future" in qs.check_answer(in_utc, qs.LIFTED_Q, [em.LIFTED],
                                       {"recovered_at": "2026-11-26 10:58"}, NOW)[0]


def test_a_solution_needs_its_text_and_only_the_details_its_flags_call_for():
    b = brief()
    plain = {"solution": "重启缴费网关", "component": None, "group_request": None}
    assert qs.check_answer(b, qs.SOLUTION, [em.SUBMIT], plain, NOW) == []
    problems = qs.check_answer(b, qs.SOLUTION, [em.SUBMIT],
                               {**plain, "changes_it_component": True,
                                "group_support_needed": True}, NOW)
    assert [p.split(" / ")[1].split(" ")[0] for p in problems] == ["name", "say"]
    assert qs.check_answer(b, qs.SOLUTION, [em.SUBMIT], {"solution": " "}, NOW) == [
        "请描述方案 / describe the solution"]


def test_steps_partly_done_need_notes_saying_which():
    b = brief()
    assert qs.check_answer(b, qs.STEPS, [em.STEPS_DONE], {"notes": None}, NOW) == []
    assert qs.check_answer(b, qs.STEPS, [em.STEPS_PARTLY], {"notes": None}, NOW)
    assert qs.check_answer(b, qs.STEPS, [em.STEPS_PARTLY], {"notes": "第3步失败"}, NOW) == []


def test_every_question_message_renders_with_its_link_and_local_times():
    from incident_ops.notify.compose import render_email, render_sms

    b, q = chased(), question()
    notices = [*qs.decide_ask(b, q, START).actions[0].notices,
               *[n for a in qs.decide_wake(b, q, START, START + minutes(31)).actions
                 for n in a.notices],
               *qs.decide_sent_back(b, q, ["驳回原因 / why"], None, 1).actions[0].notices]
    subjects = []
    for n in notices:
        if n.channel == "sms":
            text = render_sms(n.template, n.to, n.context, "k").text
            assert q.link in text and len(text) < 300
            continue
        mail = render_email(n.template, n.to, n.context, "k", n.cc)
        assert f'href="{q.link}"' in mail.html
        subjects.append(mail.subject.split("】")[0] + "】")
        if n.context["kind"] != "sent_back":
            assert "2026-11-26 09:05 (Asia/Shanghai)" in mail.html  # asked, labelled
    assert subjects == ["【应急待回答】", "【应急提醒 3】", "【应急无人回答】",
                        "【应急请重新回答】"]
