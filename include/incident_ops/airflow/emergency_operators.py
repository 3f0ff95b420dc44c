"""The emergency DAG's human-in-the-loop operators (their task ids: ``emergency_tasks``).

Airflow's HITL operators take their question (subject, body as templates) and their
preselected answer (``defaults``) and assignees when the DAG is parsed. The emergency's
questions depend on the run: the contingency plan of the system the ops chose, what the
vendors proposed in this round. Each operator here therefore takes a *prepare* function
(``emergency_questions``) that, just before the question is asked, returns the subject,
body, defaults and assignees for this run. The DAG file stays cheap to parse: these modules
import only Airflow's standard provider and our light task helpers.

Each operator also keeps the whole response (who, when, what, form fields) under the XCom
key ``answer``: a branch operator's own return value is only the task ids it follows, and
the aftermath report needs who decided what and when.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.hitl import (
    ApprovalOperator,
    HITLBranchOperator,
    HITLEntryOperator,
    HITLOperator,
)

from incident_ops.airflow.emergency_ids import ANSWER_KEY

Prepare = Callable[..., dict[str, Any]]


class _Prepared:
    """Mixin: fill subject/body/defaults/assigned_users from a prepare function at run time."""

    prepare: Prepare
    prepare_kwargs: dict[str, Any]
    defaults: list[str] | None

    def _prepare(self, context: Any) -> None:
        spec = self.prepare(context, **self.prepare_kwargs)
        for name in ("subject", "body", "assigned_users"):
            if name in spec:
                setattr(self, name, spec[name])
        if "defaults" in spec:
            defaults = spec["defaults"]
            self.defaults = [defaults] if isinstance(defaults, str) else defaults
            self.validate_defaults()  # type: ignore[attr-defined]

    def _keep_answer(self, context: Any, event: dict[str, Any]) -> None:
        at = event.get("responded_at")
        context["ti"].xcom_push(key=ANSWER_KEY, value={
            "chosen_options": list(event.get("chosen_options") or []),
            "params_input": dict(event.get("params_input") or {}),
            "responded_at": at.isoformat() if isinstance(at, datetime) else at,
            "responded_by_user": event.get("responded_by_user"),
            "timed_out": bool(event.get("timedout")),
        })


# The four classes below repeat the same three methods on purpose: Airflow's operator
# metaclass wraps the __init__ each operator class defines itself (apply_defaults checks
# ``__init__.__wrapped__``), so an __init__ inherited from a plain mixin breaks at parse time.
class PreparedQuestion(_Prepared, HITLOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepare, self.prepare_kwargs = prepare, dict(prepare_kwargs or {})

    def execute(self, context: Any) -> Any:
        self._prepare(context)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self._keep_answer(context, event)
        return super().execute_complete(context, event)


class PreparedBranch(_Prepared, HITLBranchOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepare, self.prepare_kwargs = prepare, dict(prepare_kwargs or {})

    def execute(self, context: Any) -> Any:
        self._prepare(context)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self._keep_answer(context, event)
        return super().execute_complete(context, event)


class PreparedEntry(_Prepared, HITLEntryOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepare, self.prepare_kwargs = prepare, dict(prepare_kwargs or {})

    def execute(self, context: Any) -> Any:
        self._prepare(context)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self._keep_answer(context, event)
        return super().execute_complete(context, event)


class PreparedApproval(_Prepared, ApprovalOperator):
    def __init__(self, *, prepare: Prepare, prepare_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepare, self.prepare_kwargs = prepare, dict(prepare_kwargs or {})

    def execute(self, context: Any) -> Any:
        self._prepare(context)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self._keep_answer(context, event)
        return super().execute_complete(context, event)
