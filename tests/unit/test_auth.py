"""Who may answer a question: assignees are logins, whatever id the auth manager uses."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from incident_ops.airflow.provider.auth import is_assignee


@dataclass
class FabLikeUser:
    """The two things FAB's ``User`` model gives (the FAB provider is not installed here):
    a database id as the user id, and the login."""

    id: int
    username: str

    def get_id(self) -> str:
        return str(self.id)

    def get_name(self) -> str:
        return self.username


def test_a_login_answers_under_the_simple_auth_manager_and_under_fab():
    assert is_assignee({"liu.yang"}, SimpleAuthManagerUser(username="liu.yang", role="user"))
    assert is_assignee({"liu.yang"}, FabLikeUser(7, "liu.yang"))
    assert is_assignee({"7"}, FabLikeUser(7, "liu.yang"))  # FAB's own ids still work


def test_anyone_else_is_refused():
    assert not is_assignee({"zheng.gang"}, SimpleAuthManagerUser(username="liu.yang",
                                                                  role="admin"))
    assert not is_assignee({"zheng.gang", "8"}, FabLikeUser(7, "liu.yang"))
