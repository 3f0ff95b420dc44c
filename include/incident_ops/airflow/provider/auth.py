"""Who may answer an emergency question: people by their Airflow login, whatever the auth
manager.

The questions are assigned to people's logins (``airflow_user`` in contacts.yaml or a plan).
Airflow checks an answer by comparing the assignees with the auth manager's *user id*: the
login itself under the simple auth manager (the demo, the tests), but a database number
under FAB, the auth manager a deployment runs (docker-compose.yml; with LDAP or OAuth behind
it). ``fab_auth.PeopleFabAuthManager`` is FAB with this check, which takes the login too, so
the plans name people the way they sign in.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def is_assignee(assigned: Collection[str], user: Any) -> bool:
    """Whether ``user`` (an auth manager's user) is one of the ``assigned`` ids or logins."""
    ids = {str(user.get_id())}
    login = getattr(user, "username", None) or getattr(user, "get_name", lambda: None)()
    if login:
        ids.add(str(login))
    return bool(ids & set(assigned))
