#!/usr/bin/env bash
# airflow-init (docker-compose.yml): runs once before the other Airflow services start.
#   1. directories the services write (logs, reports, auth) owned by AIRFLOW_UID;
#   2. `airflow db migrate` (also the upgrade step of a new image);
#   3. the admin user (simple auth manager: its passwords file; FAB: `airflow users create`)
#      and, with FAB, one user per person of contacts.yaml (their airflow_user, role User:
#      the emergency's questions are assigned to them), each with a random first password
#      kept in the auth volume (initial-passwords.json, owner only) for the admin to hand out;
#   4. the `servicedesk` pool that bounds calls to the desk (INCIDENT_OPS_DESK_POOL_SLOTS);
#   5. the connections given as AIRFLOW_CONN_* in .env: each is parsed now, so a malformed
#      one fails here, loudly, instead of in the first task that needs it.
# Runs as root (for step 1), like the init container of Airflow's own compose file.
# Idempotent: run it again after changing .env (`docker compose up airflow-init`).
set -euo pipefail

uid=${AIRFLOW_UID:-50000}
home=${AIRFLOW_HOME:-/opt/airflow}
echo "== directories (owner ${uid}:0)"
mkdir -p "$home/logs" "$home/reports" "$home/auth"
chown -R "${uid}:0" "$home/logs" "$home/reports" "$home/auth"

echo "== airflow db migrate"
airflow db migrate

user=${_AIRFLOW_WWW_USER_USERNAME:-admin}
password=${_AIRFLOW_WWW_USER_PASSWORD:?set _AIRFLOW_WWW_USER_PASSWORD in .env}
auth_manager=${AIRFLOW__CORE__AUTH_MANAGER:-}
echo "== admin user ${user}"
if [[ "$auth_manager" == *fab* ]]; then
  airflow users create --role Admin --username "$user" --password "$password" \
    --firstname Admin --lastname Incident-Ops --email "${user}@localhost" \
    || airflow users reset-password --username "$user" --password "$password"
  echo "== people of contacts.yaml: one login each (role User)"
  PASSWORDS_FILE="$home/auth/initial-passwords.json" python - <<'PY'
import json, os, secrets, subprocess

from incident_ops.config import load_contacts

path = os.environ["PASSWORDS_FILE"]
listed = subprocess.run(["airflow", "users", "list", "-o", "json"], check=True,
                        capture_output=True, text=True).stdout
existing = {u["username"] for u in json.loads(listed[listed.index("["):] or "[]")}
try:
    with open(path, encoding="utf-8") as fh:
        first = json.load(fh)
except (OSError, ValueError):
    first = {}
for person in load_contacts().people.values():
    login = person.airflow_user
    if not login or login in existing:
        continue
    first[login] = secrets.token_urlsafe(12)
    subprocess.run(["airflow", "users", "create", "--role", "User", "--username", login,
                    "--password", first[login], "--firstname", person.name,
                    "--lastname", login, "--email", person.email or f"{login}@localhost"],
                   check=True, capture_output=True)
    print(f"  {login}: created")
with open(path, "w", encoding="utf-8") as fh:
    json.dump(first, fh, ensure_ascii=False, indent=1)
os.chmod(path, 0o600)
print(f"  {len(first)} first passwords in {path} (hand them out; people change them)")
PY
  chown "${uid}:0" "$home/auth/initial-passwords.json"
else
  passwords=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$home/auth/passwords.json}
  # The simple auth manager reads {"user": "password"}; the file stays on the auth volume,
  # readable by the API server only (mode 0600, owner AIRFLOW_UID).
  ADMIN_USER="$user" ADMIN_PASSWORD="$password" PASSWORDS_FILE="$passwords" python - <<'PY'
import json, os
path = os.environ["PASSWORDS_FILE"]
with open(path, "w", encoding="utf-8") as fh:
    json.dump({os.environ["ADMIN_USER"]: os.environ["ADMIN_PASSWORD"]}, fh)
os.chmod(path, 0o600)
PY
  chown "${uid}:0" "$passwords"
fi

slots=${INCIDENT_OPS_DESK_POOL_SLOTS:-4}
echo "== pool servicedesk: ${slots} slots"
airflow pools set servicedesk "$slots" "Calls to the service desk (INCIDENT_OPS_DESK_POOL_SLOTS)"

echo "== connections from the environment"
python - <<'PY'
import os
import sys

from airflow.models.connection import Connection

failed = False
for conn_id in ("servicedesk_default", "smtp_default", "sms_default"):
    name = "AIRFLOW_CONN_" + conn_id.upper()
    raw = os.environ.get(name, "")
    if not raw:
        print(f"  {conn_id}: not in .env; add it in the UI (Admin > Connections)")
        continue
    try:
        conn = (Connection.from_json(raw, conn_id=conn_id) if raw.lstrip().startswith("{")
                else Connection(conn_id=conn_id, uri=raw))
    except Exception as exc:  # noqa: BLE001 - any parse error is the operator's to fix
        print(f"  {conn_id}: {name} cannot be parsed: {type(exc).__name__}: {exc}")
        failed = True
        continue
    print(f"  {conn_id}: type {conn.conn_type}, host {conn.host}")
sys.exit(1 if failed else 0)
PY
echo "== airflow-init done"
