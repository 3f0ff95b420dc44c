"""Plan pages in the Airflow UI: served by the API server, linked from the report task.

A pipeline's report task writes its plan page to the artefact store
(``<pipeline>/<date>/<run>.html``, see ``reports.plan_report``; ``airflow.object_store``) and
records the page's URL as the XCom ``plan_page``; the task's extra link **Plan page**
(``PlanPageLink``) is that URL. The API server serves the pages from the store (a bucket in
a cluster: the page need not be on the API server's disk) through the plugin in
``plugins/incident_ops.py`` (``create_app``, mounted at ``/incident-ops``), behind Airflow's
own login: a reader needs read access to the DAG's runs, the same right that shows the run
in the UI.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.sdk import BaseOperatorLink

from incident_ops.airflow.names import PLAN_PAGE_XCOM

_SEGMENT = re.compile(r"^[A-Za-z0-9_.:+-]+$")  # what safe_name and dates produce
_SUFFIXES = (".html", ".json")


class PlanPageLink(BaseOperatorLink):
    """The report task's extra link to its run's plan page."""

    name = "Plan page"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=PLAN_PAGE_XCOM)
        return str(value) if value else ""


def resolve_page(dag_id: str, day: str, name: str) -> str | None:
    """The artefact key a plan-page URL names, or None: three plain path segments and a
    page suffix (nothing else of the store is served)."""
    if not all(_SEGMENT.match(s) and s not in (".", "..") for s in (dag_id, day, name)):
        return None
    if not name.endswith(_SUFFIXES):
        return None
    return f"{dag_id}/{day}/{name}"


def create_app() -> Any:
    """The FastAPI app the API server mounts at ``URL_PREFIX``: the plan pages, the
    requester's answer pages (``answer_pages``) and the Incident ops view (``ops_view``)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import RedirectResponse, Response

    from incident_ops.airflow.object_store import artefact_store

    app = FastAPI(title="incident-ops", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def login_first(request: Request, exc: HTTPException) -> Response:
        # A person who follows the link without an Airflow session logs in and comes back.
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)))
        return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")

    @app.get("/plans/{dag_id}/{day}/{name}",
             dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])
    def plan_page(dag_id: str, day: str, name: str) -> Response:
        key = resolve_page(dag_id, day, name)
        try:
            data = artefact_store().read_bytes(key) if key else None
        except FileNotFoundError:
            data = None
        if data is None:
            raise HTTPException(404, f"no plan page {dag_id}/{day}/{name}")
        media = "text/html; charset=utf-8" if name.endswith(".html") else "application/json"
        return Response(data, media_type=media)

    from incident_ops.airflow.web import answer_pages, ops_view

    answer_pages.register(app)  # public: the signed link is the credential
    ops_view.register(app)  # behind Airflow's login
    return app
