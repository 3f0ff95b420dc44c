"""The desk behaviours the project relies on, each checked against the real RT in plain words.

Debian's packages move under us: ``request-tracker5 5.0.3+dfsg-3~deb12u7`` (a security
update) made REST2 drop ``Created`` on create, and a report test then failed with a puzzling
"0 tickets". Each test here names one behaviour, where the project relies on it, and fails
with the RT version and package that behave differently, so the next change is read in a
minute instead of debugged for an hour. They talk REST2 directly (not through our adapter):
they check RT, not our code.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.integration.conftest import DeskAccess
from tests.support.past import Past, import_past

pytestmark = pytest.mark.integration


def package_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "request-tracker5"],
                             capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() or "not installed from Debian"
    except OSError:
        return "unknown (no dpkg)"


class Rest:
    def __init__(self, access: DeskAccess) -> None:
        self.api = access.url.rstrip("/") + "/REST/2.0"
        self.session = requests.Session()
        self.session.auth = (access.user, access.password)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.api + path, timeout=30, **kwargs)

    def new_ticket(self, **body: Any) -> str:
        body = {"Queue": "Incidents", "Subject": f"desk-contract {uuid.uuid4().hex[:8]}",
                "Content": "contract check", **body}
        resp = self("POST", "/ticket", json=body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


@pytest.fixture(scope="module")
def rest(rt_access: DeskAccess) -> Iterator[Rest]:
    client = Rest(rt_access)
    yield client
    client.session.close()


@pytest.fixture(scope="module")
def says(rest: Rest) -> Callable[[str, str], str]:
    """The failure message: what changed, in which RT, and what in the project relies on it."""
    version = str(rest("GET", "/rt").json().get("Version", "?"))
    package = package_version()

    def message(behaviour: str, relied_on_by: str) -> str:
        return (f"The desk no longer behaves as the project expects. RT {version} (Debian "
                f"package request-tracker5 {package}): {behaviour}. Relied on by: "
                f"{relied_on_by}. Check the package's changelog (zcat "
                f"/usr/share/doc/request-tracker5/changelog.Debian.gz) and adapt that code.")

    return message


def test_rest2_create_does_not_take_created_so_test_data_is_imported(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    tid = rest.new_ticket(Created="2025-07-01 17:00:00")
    created = rest("GET", f"/ticket/{tid}").json()["Created"]
    # Since deb12u7 the immutable fields are dropped. If RT takes Created again, nothing
    # breaks, but the import path below is then no longer the only one: say so.
    assert not created.startswith("2025-07-01"), says(
        "REST2 create takes Created again (it dropped it since 5.0.3+dfsg-3~deb12u7)",
        "tests/support/past.py, which imports back-dated tickets through RT's Perl API "
        "because REST2 would not; REST2 could be used again")


def test_import_through_rts_api_keeps_past_dates(embedded_desk: Any, rest: Rest,
                                                 says: Callable[[str, str], str]) -> None:
    created = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
    resolved, closed = created + timedelta(hours=30), created + timedelta(hours=50)
    key = f"contract-{uuid.uuid4().hex[:8]}"
    ids = import_past(embedded_desk, [Past(key=key, subject=f"desk-contract {key}",
                                           priority="high", created=created,
                                           status="closed", resolved=resolved,
                                           closed=closed)])
    ticket = rest("GET", f"/ticket/{ids[key]}").json()
    history = rest("GET", f"/ticket/{ids[key]}/history",
                   params={"fields": "Type,Field,NewValue,Created", "per_page": 100}).json()
    moves = {h["NewValue"]: h["Created"] for h in history["items"] if h.get("Type") == "Status"}
    seen = (ticket["Created"], moves.get("resolved"), moves.get("closed"), ticket["Resolved"])
    assert seen == ("2025-03-03T01:00:00Z", "2025-03-04T07:00:00Z", "2025-03-05T03:00:00Z",
                    "2025-03-05T03:00:00Z"), says(
        "a ticket imported through RT's Perl API (RT::Ticket->Create and SetStatus with the "
        "clock set to each event) holds Created, resolved move, closed move, Resolved = "
        f"{seen}, not the imported 2025-03-03T01:00, 03-04T07:00, 03-05T03:00, 03-05T03:00",
        "tests/support/past.py and the demo's seeding (embedded_desk/seed.pl): back-dated "
        "desks for the report and SLA tests")


def test_resolved_is_the_last_move_into_an_inactive_status(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    tid = rest.new_ticket()
    assert rest("PUT", f"/ticket/{tid}", json={"Status": "resolved"}).ok
    resolved = rest("GET", f"/ticket/{tid}").json().get("Resolved")
    assert resolved and not resolved.startswith("1970"), says(
        f"moving a ticket into the inactive status 'resolved' left Resolved = {resolved!r}",
        "the resolution time of resolved tickets (reports, MTTR, SLA compliance)")
    # RT stamps Resolved on every move into an inactive status: closing a resolved ticket
    # moves it to the close time. A closed ticket's resolution time therefore comes from
    # its history (the status transaction to 'resolved'), never from Resolved.
    history = rest("GET", f"/ticket/{tid}/history",
                   params={"fields": "Type,NewValue,Created", "per_page": 100}).json()
    moved = [h["Created"] for h in history["items"]
             if h.get("Type") == "Status" and h.get("NewValue") == "resolved"]
    assert moved == [resolved], says(
        f"the status transaction to 'resolved' is dated {moved}, Resolved says {resolved}",
        "the resolution time read from a ticket's history")


def test_the_etag_is_the_newest_transaction_and_a_stale_if_match_is_refused(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    tid = rest.new_ticket()
    resp = rest("GET", f"/ticket/{tid}")
    etag = (resp.headers.get("ETag") or "").removeprefix("W/").strip('"')
    newest = rest("GET", f"/ticket/{tid}/history",
                  params={"per_page": 100}).json()["items"][-1]["id"]
    assert etag == str(newest), says(
        f"a ticket's ETag is {etag!r}, not the id of its newest transaction ({newest})",
        "desk/rt/reads.py: search versions and conditional writes")
    assert rest("PUT", f"/ticket/{tid}", json={"Subject": "moved on"}).ok
    stale = rest("PUT", f"/ticket/{tid}", json={"Subject": "late"},
                 headers={"If-Match": f'"{etag}"'})
    assert stale.status_code == 412, says(
        f"a PUT with an outdated If-Match answered {stale.status_code}, not 412",
        "every conditional write (a person's edit between fetch and apply is kept)")


def test_a_refused_value_answers_200_with_the_refusal_in_the_messages(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    tid = rest.new_ticket()
    resp = rest("PUT", f"/ticket/{tid}", json={"CustomFields": {"Source": "not-a-source"}})
    assert resp.status_code == 200 and "Invalid value" in " ".join(map(str, resp.json())), says(
        f"an invalid Select value answered {resp.status_code} {resp.text[:200]!r}, not 200 "
        "with 'Invalid value' in the message list",
        "desk/rt/mapping.py rejections: every write reads RT's messages to find refusals")


def test_bulk_update_answers_each_ticket_in_request_order(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    first, second = rest.new_ticket(), rest.new_ticket()
    answer = rest("PUT", "/tickets/bulk", json=[{"id": int(second), "Subject": "b"},
                                                 {"id": int(first), "Subject": "a"}]).json()
    assert [str(row[0]) for row in answer] == [second, first], says(
        f"a bulk update answered {answer!r}, not one row per ticket in request order",
        "the bulk closes of incident_closure (desk/rt/adapter.py bulk_update)")


def test_transactions_after_a_given_id_can_be_searched(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    tid = rest.new_ticket()
    newest = rest("GET", f"/ticket/{tid}/history",
                  params={"per_page": 100}).json()["items"][-1]["id"]
    assert rest("PUT", f"/ticket/{tid}", json={"Subject": "after"}).ok
    query = f"ObjectType = 'RT::Ticket' AND ObjectId = {tid} AND id > {newest}"
    found = rest("GET", "/transactions", params={"query": query, "per_page": 100}).json()
    assert len(found.get("items") or []) >= 1, says(
        f"searching transactions with id > {newest} on ticket {tid} found {found!r}",
        "desk/rt/reads.py moved(): 'changed since read' checks before every write")


def test_status_and_owner_changes_are_transactions_searchable_by_ticket(
        rest: Rest, says: Callable[[str, str], str]) -> None:
    tid = rest.new_ticket()
    assert rest("PUT", f"/ticket/{tid}", json={"Owner": "li.na"}).ok
    assert rest("PUT", f"/ticket/{tid}", json={"Status": "in-progress"}).ok
    nobody = str(rest("GET", "/user/Nobody").json()["id"])
    li_na = str(rest("GET", "/user/li.na").json()["id"])
    query = (f"ObjectType = 'RT::Ticket' AND ObjectId = {tid} AND "
             "(Field = 'Status' OR Field = 'Owner')")
    found = rest("GET", "/transactions", params={
        "query": query, "per_page": 100, "orderby": "id", "order": "ASC",
        "fields": "ObjectId,Type,Field,OldValue,NewValue,Created"}).json()
    seen = [(t.get("Type"), t.get("Field"), t.get("OldValue"), t.get("NewValue"))
            for t in found.get("items") or []]
    # RT 5 records an owner change twice, the column's Set and the role's SetWatcher;
    # reads.history() reads the Set.
    assert seen == [("Set", "Owner", nobody, li_na), ("SetWatcher", "Owner", nobody, li_na),
                    ("Status", "Status", "new", "in-progress")], says(
        f"a ticket's owner and status changes search as {seen}, not as Set and SetWatcher "
        f"of Owner {nobody} -> {li_na} (user ids, Nobody's id when unowned) then Status "
        "new -> in-progress",
        "desk/rt/reads.py history() and mapping.times_from_history(): response, "
        "resolution and close times of the reports")
