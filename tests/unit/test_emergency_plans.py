"""Contingency plans (101 principles): the shipped plans, the validator, the coverage guess."""

from __future__ import annotations

import shutil

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from incident_ops.config import (
    config_dir,
    load_contacts,
    load_plans,
    load_vocabulary,
    plan_systems,
    system_labels,
)
from incident_ops.policy.contingency import (
    IMPACTS,
    PLANS_DIR,
    SAFEGUARDS,
    ContingencyPlan,
    PlanUnavailable,
    assess_coverage,
    parse_plan,
)

PLANS = config_dir() / PLANS_DIR
CONTACTS = load_contacts()
BOOK = load_plans(CONTACTS)
PLAN_SYSTEMS = tuple(plan_systems())
SYSTEMS = system_labels()


def plan_data(system: str = "crm") -> dict:
    return yaml.safe_load((PLANS / f"{system}.yaml").read_text(encoding="utf-8"))


def test_every_shipped_plan_loads_without_a_problem():
    assert BOOK.problems == []
    assert sorted(BOOK.plans) == sorted(PLAN_SYSTEMS)


def test_the_trigger_forms_systems_are_the_plan_files_labelled_by_the_vocabulary():
    assert sorted(PLAN_SYSTEMS) == sorted(p.stem for p in PLANS.glob("*.yaml")) and \
        len(PLAN_SYSTEMS) == 7
    vocab = load_vocabulary()
    assert plan_systems() == {s: vocab.both("systems", s) for s in PLAN_SYSTEMS}
    assert plan_systems()["billing"] == "计费账务系统 / Billing"
    assert list(IMPACTS) == vocab.codes("impacts")


def test_a_new_system_gets_its_plan_by_adding_a_file_no_code(tmp_path, airflow_db,
                                                            monkeypatch):
    """The vocabulary names the system, plans/<code>.yaml holds its plan: the form offers it,
    the book loads it; a plan for a system the vocabulary lacks is refused by name."""
    from tests.support.airflow_dags import load_dag

    folder = tmp_path / "config"
    shutil.copytree(config_dir(), folder)
    vocab = folder / "vocabulary.yaml"
    crm_line = "  crm:      {zh: 客户关系管理系统, en: CRM}\n"
    vocab.write_text(vocab.read_text(encoding="utf-8").replace(
        crm_line, crm_line + "  iot: {zh: 物联网平台, en: IoT platform}\n", 1), encoding="utf-8")
    crm = (folder / PLANS_DIR / "crm.yaml").read_text(encoding="utf-8")
    (folder / PLANS_DIR / "iot.yaml").write_text(crm.replace("system: crm", "system: iot"),
                                                 encoding="utf-8")
    (folder / PLANS_DIR / "ghost.yaml").write_text(crm.replace("system: crm", "system: ghost"),
                                                   encoding="utf-8")
    book = load_plans(load_contacts(folder), folder)
    assert book.get("iot").system_label == "物联网平台 / IoT platform"
    [ghost] = book.problems
    assert ghost.file == "plans/ghost.yaml" and "not a system of vocabulary.yaml" in \
        ghost.message
    assert plan_systems(folder)["iot"] == "物联网平台 / IoT platform"
    monkeypatch.setenv("INCIDENT_OPS_CONFIG_DIR", str(folder))
    param = load_dag("emergency_response").params.get_param("system")
    assert "iot" in param.schema["enum"] and "ghost" in param.schema["enum"]


@pytest.mark.parametrize("system", PLAN_SYSTEMS)
def test_each_plan_holds_every_element_101_requires(system):
    plan = BOOK.get(system)
    assert plan.start_conditions and all(c.keywords for c in plan.start_conditions)
    assert plan.leader.phone and plan.members
    assert all(p.email or p.phone for p in plan.team)
    assert plan.steps and plan.aftermath
    informed = {p.email for p in plan.inform}
    assert {"noc@group-hq.example.cn", "zheng.gang@ops.example.cn"} <= informed
    assert set(plan.safeguards) == set(SAFEGUARDS)


def test_a_person_key_takes_name_and_contacts_from_contacts_yaml():
    leader = BOOK.get("crm").leader
    assert (leader.person, leader.name, leader.phone) == ("liu.yang", "刘洋", "13800000021")


def test_a_broken_plan_is_reported_by_file_and_field_and_the_others_keep_working(tmp_path):
    plans = tmp_path / PLANS_DIR
    plans.mkdir()
    shutil.copy(config_dir() / "vocabulary.yaml", tmp_path / "vocabulary.yaml")
    for name in ("crm.yaml", "billing.yaml", "boss.yaml"):
        shutil.copy(PLANS / name, plans / name)
    billing = plan_data("billing")
    del billing["safeguards"]["drills"]
    billing["team"]["members"][1] = {"person": "nobody"}
    (plans / "billing.yaml").write_text(yaml.safe_dump(billing, allow_unicode=True))
    (plans / "boss.yaml").write_text("system: boss\nsteps: [unclosed\n")
    book = load_plans(CONTACTS, tmp_path)
    assert sorted(book.plans) == ["crm"]
    problems = {(p.file, p.field) for p in book.problems}
    assert ("plans/billing.yaml", "safeguards") in problems
    assert any(f == "plans/boss.yaml" and "line" in field for f, field in problems)
    with pytest.raises(PlanUnavailable, match=r"plans/billing.yaml: safeguards"):
        book.get("billing")


def test_cross_references_are_checked_once_the_shape_is_right():
    data = plan_data("crm")
    data["team"]["members"][1] = {"person": "nobody"}
    data["team"]["members"].append({"name": "无联系方式的人"})
    data["inform"]["roles"].append("leaders")
    data["system"] = "billing"
    plan, problems = parse_plan(data, "plans/crm.yaml", CONTACTS, SYSTEMS)
    assert plan is None
    by_field = {p.field: p.message for p in problems}
    assert "unknown person 'nobody'" in by_field["team.members[1]"]
    assert "neither an email nor a phone" in by_field["team.members[4]"]
    assert "does not match the file name" in by_field["system"]


def test_schema_errors_name_the_field_inside_lists():
    data = plan_data("crm")
    data["start_conditions"][2]["impacts"] = ["huge"]
    data["team"]["members"][0] = {"person": "sun.min", "mobile": "138"}
    _, problems = parse_plan(data, "plans/crm.yaml", CONTACTS, SYSTEMS)
    fields = {p.field for p in problems}
    assert {"start_conditions[2].impacts[0]", "team.members[0]"} <= fields
    assert "Additional properties" in str(problems)


def test_a_plan_survives_the_trip_through_xcom():
    import json

    plan = BOOK.get("billing")
    assert ContingencyPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_symptoms_meeting_a_start_condition_suggest_the_plan():
    coverage = assess_coverage(BOOK.get("crm"), "全省营业厅 CRM 无法登录，Login FAILED", "high")
    assert coverage.covered
    [match] = coverage.matched
    assert match["id"] == "crm-front-down" and "无法登录" in match["keywords"]


def test_a_condition_limited_to_high_impacts_does_not_start_the_plan_at_low_impact():
    assert not assess_coverage(BOOK.get("crm"), "个别营业厅无法登录", "low").covered
    assert assess_coverage(BOOK.get("crm"), "个别营业厅无法登录", "major").covered


def test_symptoms_outside_every_condition_suggest_the_vendors():
    coverage = assess_coverage(BOOK.get("crm"), "报表页面偶发乱码", "major")
    assert not coverage.covered and "none of the plan's start conditions" in coverage.reason


@given(noise=st.text(max_size=40), impact=st.sampled_from(IMPACTS),
       pick=st.integers(min_value=0, max_value=1000))
def test_a_keyword_of_a_condition_that_applies_at_the_impact_always_starts_the_plan(
        noise, impact, pick):
    plan = BOOK.get("billing")
    applicable = [c for c in plan.start_conditions if impact in c.impacts]
    condition = applicable[pick % len(applicable)]
    keyword = condition.keywords[pick % len(condition.keywords)]
    coverage = assess_coverage(plan, f"{noise} {keyword.upper()} {noise}", impact)
    assert condition.id in {m["id"] for m in coverage.matched}



def test_symptoms_in_other_words_of_the_same_meaning_meet_the_condition():
    """"全省 OSS 工单派发中断" (dispatch interrupted) is the OSS plan's "工单调度" (dispatching)
    down: met by meaning, and the question says by which words."""
    coverage = assess_coverage(BOOK.get("oss"), "全省 OSS 工单派发中断", "major")
    assert coverage.covered
    [match] = coverage.matched
    assert match["id"] == "oss-resource-down"
    assert "工单调度 (工单 + 派发)" in match["keywords"]
    english = assess_coverage(BOOK.get("oss"), "Work-order dispatching stopped province-wide",
                              "major")
    assert [m["id"] for m in english.matched] == ["oss-resource-down"]


def test_meaning_needs_every_word_of_a_keyword_not_one():
    """One word of the same meaning is not enough: an interruption of something else is not
    the dispatching plan's condition, and a garbled page is not the CRM front end down."""
    assert not assess_coverage(BOOK.get("oss"), "机房空调中断", "major").covered
    assert not assess_coverage(BOOK.get("crm"), "报表页面偶发乱码", "major").covered
