"""The emergency DAG's human-in-the-loop operators (their task ids: ``emergency.ids``).

Airflow's HITL operators take their question (subject, body), preselected answer and
assignees when the DAG is parsed. The emergency's questions depend on the run: the plan of
the system the ops chose, what the vendors proposed in this round. Each operator here takes
a *prepare* function (``emergency.asking``) that, just before the question is asked,
returns its subject, body, defaults, kind and assignees for this run.

What they add to Airflow's:

- **Told, reminded, escalated.** The question's ``notifiers`` (by default
  ``EmergencyQuestionNotifier``) tell its people by mail and SMS, with a link, when it is
  asked. Airflow has no reminders, so the wait itself keeps the time: the task parks in
  ``awaiting_input`` with a response timeout that is the next moment something falls due (a
  reminder, the escalation). When it passes, the scheduler's timeout sweep resumes the task
  with a timeout event; the task sends what is due, through the apply engine (each message
  keyed, so never twice), and parks again. No trigger, no triggerer, no watcher DAG: the
  reminder lives and dies with the question, and a worker is held only for the seconds a
  reminder takes. (The sweep answers a question that has ``defaults`` with them, so while a
  question is being chased its preselected answer is shown in the body, not stored as
  Airflow's default.) The first wake after a question is (re-)opened comes within
  ``SETTLE``: it picks up an answer that landed just as the task parked (see there).
- **Answers that cannot be used go back.** What the form cannot require (a recovery time
  only when *lifted*, a component only when one changes) is checked on the answer
  (``policy.questions.check_answer``); a failing answer is cleared, its giver told why by
  mail, and the question parks again, open as before.
- **The whole answer is kept** under the XCom key ``answer`` (who, when, what, the form):
  a branch operator's own return value is only the task ids it follows, and the report
  needs who decided what and when.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from airflow.providers.standard.operators.hitl import (
    ApprovalOperator,
    HITLBranchOperator,
    HITLEntryOperator,
    HITLOperator,
)
from airflow.sdk.bases.notifier import BaseNotifier

from incident_ops.airflow.emergency.ids import ANSWER_KEY
from incident_ops.policy.emergency import APPROVE, REJECT

Prepare = Callable[..., dict[str, Any]]
TIMEOUT = "timeout"
# The first wake after a question is (re-)opened comes this soon at the latest. An answer
# committed at the very moment the task parks is otherwise stranded on SQLite: Airflow
# serialises the park (``ti_update_state``, awaiting_input branch, in
# api_fastapi/execution_api/routes/task_instances.py) and the answer (``update_hitl_detail``
# in api_fastapi/core_api/routes/public/hitl.py) with SELECT ... FOR UPDATE, which SQLite
# ignores: the park reads "no response yet", the answer reads "task still running", and the
# task waits in awaiting_input with its answer in (seen in tests/e2e/test_fast_answers.py).
# The scheduler's timeout sweep (``check_awaiting_input_timeouts``) resumes a task whose
# deadline passed with the response it finds, so an early deadline picks such an answer up;
# when none came, the wake sends nothing and parks until the next reminder.
SETTLE = timedelta(seconds=10)


class EmergencyQuestionNotifier(BaseNotifier):
    """Tells a question's people it waits for them: mail and SMS with the link, handed to the
    apply engine as a plan (keyed on the question: a retried task sends nothing again)."""

    def notify(self, context: Any) -> None:
        from incident_ops.airflow.emergency.chasing import question_asked

        task = context["task"]
        question_asked(context, task.question, task.asked_at)


def _now() -> datetime:
    return datetime.now(UTC)


class _Prepared:
    """Mixin: prepare the question at run time, tell, chase, check and keep the answer."""

    prepare: Prepare
    prepare_kwargs: dict[str, Any]
    defaults: list[str] | None
    question: Any = None  # policy.questions.Question once asked
    asked_at: datetime | None = None

    def _setup(self, prepare: Prepare, prepare_kwargs: dict[str, Any] | None) -> None:
        self.prepare, self.prepare_kwargs = prepare, dict(prepare_kwargs or {})
        op: Any = self
        if not op.notifiers:
            op.notifiers = [EmergencyQuestionNotifier()]

    def _prepare(self, context: Any) -> dict[str, Any]:
        spec = self.prepare(context, **self.prepare_kwargs)
        for name in ("subject", "body", "assigned_users"):
            if name in spec:
                setattr(self, name, spec[name])
        if "defaults" in spec:
            defaults = spec["defaults"]
            self.defaults = [defaults] if isinstance(defaults, str) else defaults
            self.validate_defaults()  # type: ignore[attr-defined]
        return spec

    def _post(self, context: Any, *, chased: bool) -> None:
        """Write (or re-open) the question Airflow shows. Airflow's own timeout sweep would
        answer a question that has defaults with them at our first reminder: a chased question
        keeps its preselection in the body only."""
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        op: Any = self
        upsert_hitl_detail(ti_id=context["task_instance"].id, options=op.options,
                           subject=op.subject, body=op.body,
                           defaults=None if chased else op.defaults, multiple=op.multiple,
                           params=op.serialized_params, assigned_users=op.assigned_users)

    @staticmethod
    def _settle(wake: timedelta | None, *, chased: bool) -> timedelta | None:
        """The wake of a question just (re-)opened: soon (``SETTLE``), then as chased. A
        question posted unchased keeps no deadline: it holds Airflow's defaults, which the
        timeout sweep would take as the answer."""
        if not chased:
            return wake
        return SETTLE if wake is None else min(wake, SETTLE)

    def _park(self, context: Any, state: dict[str, Any], wake: timedelta | None) -> NoReturn:
        from airflow.sdk.exceptions import TaskAwaitingInput

        raise TaskAwaitingInput(method_name="execute_complete", kwargs=state, timeout=wake)

    def _retried(self, context: Any) -> bool:
        """A retry (after a failure), as opposed to a first try or a clear, which restart
        the count of tries (``max_tries`` grows by ``retries`` on a clear).

        A retry must not post its question again: Airflow erases an answer when a question
        is posted again (what a person clearing the task wants), and an answer given to the
        failed try is still the answer (Airflow 3.3.2's own LocalExecutor failed a try whose
        answer landed while the worker that parked it was still finishing; the project's
        ``incident_ops.airflow.provider.executor`` closes that race). Not posting again keeps that
        answer: the task picks it up as it parks."""
        ti = context["ti"]
        op: Any = self
        first_try = ti.max_tries - (op.retries or 0) + 1
        return bool(ti.try_number > max(first_try, 1))

    def execute(self, context: Any) -> Any:
        from incident_ops.airflow.emergency.chasing import already_posted, question_of, wake_in

        spec = self._prepare(context)
        self.question = question_of(context, spec)
        self.asked_at = _now()
        state = {"question": self.question.to_dict(), "asked_at": self.asked_at.isoformat(),
                 "sent_back": 0}
        wake = wake_in(context, self.asked_at, self.asked_at)
        chased = wake is not None
        if not (self._retried(context) and already_posted(context, self.question)):
            self._post(context, chased=chased)
        op: Any = self
        for notifier in op.notifiers:
            notifier(context)
        self._park(context, state, self._settle(wake, chased=chased))

    def execute_complete(self, context: Any, event: dict[str, Any],
                         question: dict[str, Any] | None = None, asked_at: str | None = None,
                         sent_back: int = 0) -> Any:
        from incident_ops.airflow.emergency.chasing import (
            answer_problems,
            question_from,
            question_wake,
            send_back,
            wake_in,
        )

        if question is None or asked_at is None:  # parked by an older version of this code
            return self._finish(context, event)
        q = question_from(question)
        asked = datetime.fromisoformat(asked_at)
        state = {"question": question, "asked_at": asked_at, "sent_back": sent_back}
        if event.get("error_type") == TIMEOUT:
            # Our alarm clock, not a failure: send what fell due, wait on.
            self._park(context, state, question_wake(context, q, asked))
        if "error" in event:
            return self._finish(context, event)
        event = self._complete_form(event)
        problems = self._form_problems(event) + answer_problems(
            context, q.kind, list(event.get("chosen_options") or []),
            dict(event.get("params_input") or {}))
        if problems:
            send_back(context, q, problems, event.get("responded_by_user"), sent_back + 1)
            self._prepare(context)
            self._post(context, chased=True)
            self._park(context, {**state, "sent_back": sent_back + 1},
                       self._settle(wake_in(context, asked, _now()), chased=True))
        return self._finish(context, event)

    def _complete_form(self, event: dict[str, Any]) -> dict[str, Any]:
        """An answer over REST may leave form fields out: they take the form's defaults (the
        UI always sends every field; Airflow refuses a partial form outright)."""
        op: Any = self
        given = dict(event.get("params_input") or {})
        if not op.params or not given:
            return event
        return {**event, "params_input": {**op.params.dump(), **given}}

    def _form_problems(self, event: dict[str, Any]) -> list[str]:
        """The form's own rules (types, patterns), checked here rather than failing the task
        on them: an answer given over REST is not checked by the UI."""
        op: Any = self
        given = dict(event.get("params_input") or {})
        if not given:
            return []
        unknown = set(given) - set(op.serialized_params)
        if unknown:
            return [f"表单没有字段 / the form has no field(s): {', '.join(sorted(unknown))}"]
        problems = []
        for name, value in given.items():
            try:
                op.params[name] = value
            except Exception as exc:  # noqa: BLE001 - Airflow's ParamValidationError
                problems.append(f"{name}: {exc}")
        return problems

    def _finish(self, context: Any, event: dict[str, Any]) -> Any:
        at = event.get("responded_at")
        if "error" not in event:
            context["ti"].xcom_push(key=ANSWER_KEY, value={
                "chosen_options": list(event.get("chosen_options") or []),
                "params_input": dict(event.get("params_input") or {}),
                "responded_at": at.isoformat() if isinstance(at, datetime) else at,
                "responded_by_user": event.get("responded_by_user"),
                "timed_out": bool(event.get("timedout")),
            })
        return super().execute_complete(context, event)  # type: ignore[misc]


# The four classes below repeat __init__ on purpose: Airflow's operator metaclass wraps the
# __init__ each operator class defines itself (apply_defaults checks ``__init__.__wrapped__``),
# so an __init__ inherited from a plain mixin breaks at parse time.
class PreparedQuestion(_Prepared, HITLOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup(prepare, prepare_kwargs)


class PreparedBranch(_Prepared, HITLBranchOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup(prepare, prepare_kwargs)


class PreparedEntry(_Prepared, HITLEntryOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup(prepare, prepare_kwargs)


class PreparedApproval(_Prepared, ApprovalOperator):
    """Airflow's approval with bilingual options (its own are English only): a rejection
    skips what follows, as ``ApprovalOperator`` does."""

    APPROVE = APPROVE
    REJECT = REJECT

    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup(prepare, prepare_kwargs)
