"""The forms people fill in, as Airflow 3's UI draws them: a field carries the red "required"
asterisk when its schema has a type that does not admit null (the UI's FlexibleForm: a
``type`` that is not a list holding "null"). Only what the process cannot go without is
required: the emergency's incident, system, impact, symptoms and reporter, and a round's
solution. Toggles, notes and choices with a default are optional.

The DAGs are loaded as the DAG processor loads them (``DagBag`` on ``dags/``), so a form
built anywhere (DAG file or ``airflow/emergency/form.py``) is what is checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incident_ops.policy import questions as qs

DAGS = Path(__file__).resolve().parents[2] / "dags"
REQUIRED = {
    ("emergency_response", None): {"ticket_id", "system", "impact", "symptoms", "reporter"},
    ("emergency_response", "propose_solution"): {"solution"},
}


def shown_required(schema: dict[str, Any]) -> bool:
    """What the UI's FlexibleForm marks with an asterisk (Airflow 3.x ``isRequired``)."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=DAGS, safe_mode=False)
    assert bag.import_errors == {}
    return bag


def shown(param: Any) -> dict[str, Any]:
    return {**param.schema, "description": param.description}


def forms(dagbag: Any) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Every form: each DAG's trigger form, and each task's answer form (by task name, the
    rounds' copies once)."""
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for dag_id, dag in dagbag.dags.items():
        found[(dag_id, None)] = {n: shown(dag.params.get_param(n)) for n in dag.params}
        for task in dag.tasks:
            own = set(task.params) - set(dag.params)
            if own:
                found[(dag_id, task.task_id.rsplit(".", 1)[-1])] = {
                    n: shown(task.params.get_param(n)) for n in own}
    return found


def test_only_what_the_process_needs_is_marked_required(dagbag):
    marked = {where: {n for n, s in form.items() if shown_required(s)}
              for where, form in forms(dagbag).items()}
    assert {w: m for w, m in marked.items() if m} == REQUIRED


def test_every_optional_toggle_still_defaults_to_off_and_the_answer_checks_accept_it(dagbag):
    form = forms(dagbag)[("emergency_response", "propose_solution")]
    toggles = {n for n, s in form.items() if "boolean" in s["type"]}
    assert toggles == {"interrupts_business", "changes_it_component", "group_support_needed"}
    from emergency_sample import START, brief

    b = brief()
    # A toggle left empty (null) means no, as before: the checks accept the answer...
    answer = {"solution": "重启计费前置机 restart the billing front end",
              **{t: None for t in toggles}}
    assert qs.check_answer(b, qs.SOLUTION, ["提交 / Submit"], answer, START) == []
    # ...and a ticked one still needs its detail.
    answer["changes_it_component"] = True
    assert any("component" in p for p in qs.check_answer(
        b, qs.SOLUTION, ["提交 / Submit"], answer, START))


def test_the_report_form_speaks_both_languages_and_empty_means_the_default(dagbag):
    for kind in ("daily", "weekly", "monthly"):
        form = forms(dagbag)[(f"incident_report_{kind}", None)]
        language = form["language"]
        assert language["title"] == "语言 / Language"
        assert language["enum"][0] is None  # the empty choice, the default
        shown = {str(k): v for k, v in language["values_display"].items()}
        assert shown == {"None": "reports.yaml 的默认 / reports.yaml's default",
                         "zh": "中文", "en": "English"}
        assert form["date"]["title"] == "报告日期 / Report date"
        assert form["resend"]["title"] == "重新发送 / Send again"
        assert all(" / " in s["description"] for s in form.values())
