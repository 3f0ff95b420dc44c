#!/usr/bin/env bash
# make demo / make stop: the embedded desk with sample data, a mail catcher, Airflow standalone
# with the project's DAGs. Everything runs on 127.0.0.1, in its own process group, with its
# state under .run/ and .desk/ (both git-ignored). The environment is scripts/demo-env.sh;
# scripts/airflow is the demo's Airflow CLI from any shell.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=demo-env.sh
source scripts/demo-env.sh
BIN=$ROOT/.venv/bin
RUN=$DEMO_RUN
AIRFLOW_URL=http://127.0.0.1:$DEMO_AIRFLOW_PORT
DESK_URL=http://127.0.0.1:$DESK_PORT
MAILBOX_URL=http://127.0.0.1:$DEMO_MAIL_PORT
# What the demo shows people: the pipelines that run on their own, and the emergency DAG,
# which must be unpaused for a trigger (UI, CLI or REST) to start a run rather than queue.
UNPAUSED=(incident_closure urgent_incidents incident_queue_monitor emergency_response)

wait_http() {  # url deadline-seconds what
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if (( SECONDS > deadline )); then echo "error: $3 did not answer at $1 within $2 s" >&2; return 1; fi
    sleep 1
  done
}

start_bg() {  # name command...: start in its own process group, remember the pid
  local name=$1; shift
  if [[ -f $RUN/$name.pid ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0
  fi
  setsid "$@" > "$RUN/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

api() {  # METHOD PATH [JSON]: Airflow's REST API as admin (token from /auth/token)
  "$BIN/python" - "$AIRFLOW_URL" "$@" <<'PY'
import json, sys, time, requests
base, method, path = sys.argv[1:4]
body = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
for attempt in range(5):  # a busy SQLite answers 500 now and then: try again
    try:
        token = requests.post(f"{base}/auth/token", timeout=30,
                              json={"username": "admin", "password": "admin"}).json()["access_token"]
        resp = requests.request(method, base + path, json=body, timeout=90,
                                headers={"Authorization": f"Bearer {token}"})
    except (requests.RequestException, ValueError, KeyError) as exc:
        resp, error = None, exc
    if resp is not None and resp.status_code < 500:
        break
    time.sleep(2 * (attempt + 1))
if resp is None:
    sys.exit(f"{method} {path}: {error}")
print(resp.text)
sys.exit(0 if resp.ok else 1)
PY
}

wait_dag() {  # dag deadline-seconds: until the dag-processor has parsed and stored it
  local deadline=$((SECONDS + $2))
  until api GET "/api/v2/dags/$1" > /dev/null 2>&1; do
    if (( SECONDS > deadline )); then echo "error: DAG $1 not loaded within $2 s" >&2; return 1; fi
    sleep 2
  done
}

first_closure_run() {  # SINCE: prints the id of the closure run the demo opens with
  # Unpausing lets the scheduler start the run of the latest cron tick when that is recent
  # (Airflow's CronTriggerTimetable), and the next tick's run comes on its own. The demo
  # opens with exactly one closure run and says which: the run the scheduler queued since
  # the unpause (SINCE), else the next tick's when it is due within 90 s, else one started
  # by hand (a run started by hand next to a tick's run would race it, and the loser would
  # find nothing to do). First it waits until the scheduler has looked at the DAG: its
  # next run is then in the future. Later runs (every 10 min) find nothing new unless
  # tickets change.
  local since=$1 deadline=$((SECONDS + 60)) dag
  while :; do
    dag=$(api GET /api/v2/dags/incident_closure) || dag='{}'
    "$BIN/python" -c '
import json, sys
from datetime import UTC, datetime
after = json.loads(sys.argv[1]).get("next_dagrun_run_after")
sys.exit(0 if after and datetime.fromisoformat(after) > datetime.now(UTC) else 1)' "$dag" && break
    (( SECONDS < deadline )) || break
    sleep 1
  done
  api GET "/api/v2/dags/incident_closure/dagRuns?order_by=-run_after&limit=20" | "$BIN/python" -c '
import json, sys
from datetime import UTC, datetime, timedelta
def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
since, dag = when(sys.argv[1]), json.loads(sys.argv[2])
queued = [r for r in json.load(sys.stdin).get("dag_runs", [])
          if when(r.get("queued_at")) and when(r["queued_at"]) >= since]
after, logical = dag.get("next_dagrun_run_after"), dag.get("next_dagrun_logical_date")
if queued:
    print(min(queued, key=lambda r: r["queued_at"])["dag_run_id"])
elif after and logical and when(after) <= datetime.now(UTC) + timedelta(seconds=90):
    print("scheduled__" + when(logical).isoformat())' "$since" "$dag" > "$RUN/first-closure-run"
  if [[ ! -s $RUN/first-closure-run ]]; then
    api POST /api/v2/dags/incident_closure/dagRuns '{"logical_date": null}' \
      | "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["dag_run_id"])' \
      > "$RUN/first-closure-run"
  fi
  cat "$RUN/first-closure-run"
}

save_env() {  # what this demo runs with, for scripts/airflow in other shells
  local name
  : > "$RUN/demo.env"
  for name in DEMO_AIRFLOW_PORT DESK_PORT DEMO_SMTP_PORT DEMO_MAIL_PORT \
      $(compgen -e | grep '^INCIDENT_OPS_' | grep -v '^INCIDENT_OPS_REPORTS_DIR$\|^INCIDENT_OPS_AIRFLOW_URL$'); do
    printf '%s=%q\n' "$name" "${!name}" >> "$RUN/demo.env"
  done
}

failed() {
  echo "error: the demo did not start; see the logs in $RUN/ (airflow.log, mailcatcher.log)" \
    "and .desk/rt-server.log. Stop what did start with: make stop" >&2
  [[ -f $RUN/airflow.log ]] && tail -n 15 "$RUN/airflow.log" >&2
}

stop_bg() {  # name signal
  local name=$1 sig=${2:-TERM} pid
  [[ -f $RUN/$name.pid ]] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" -- -"$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- -"$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
  echo "stopped $name"
}

start() {
  trap failed ERR
  mkdir -p "$RUN" "$AIRFLOW_HOME/config"
  echo 'CONNECT_ARGS = {"timeout": 60}  # seconds a writer waits for SQLite (scripts/demo-env.sh)' \
    > "$AIRFLOW_HOME/config/incident_ops_demo_db.py"
  save_env
  echo "== desk: Request Tracker 5 on $DESK_URL"
  "$BIN/python" -m incident_ops.embedded_desk provision
  "$BIN/python" -m incident_ops.embedded_desk start --port "$DESK_PORT"
  seeded=$("$BIN/python" -m incident_ops.embedded_desk seed --count "${DEMO_TICKETS:-2000}")
  echo "$seeded"
  echo "== mail catcher: SMTP 127.0.0.1:$DEMO_SMTP_PORT, inbox $MAILBOX_URL/"
  start_bg mailcatcher "$BIN/python" scripts/mailcatcher.py --dir "$RUN/outbox" \
    --smtp-port "$DEMO_SMTP_PORT" --http-port "$DEMO_MAIL_PORT"
  echo "== Airflow standalone on $AIRFLOW_URL (first start ~1 min)"
  # One login per person of contacts.yaml (airflow_user; role "user"): each answers the
  # emergency's questions of their role, nobody else's; password = login (loopback demo only).
  people=$("$BIN/python" -c 'from incident_ops.config import load_contacts
print(" ".join(p.airflow_user for p in load_contacts().people.values() if p.airflow_user))')
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin$(printf ',%s:user' $people)"
  "$BIN/python" -c 'import json, sys; print(json.dumps({"admin": "admin", **{p: p for p in sys.argv[1:]}}))' \
    $people > "$AIRFLOW_HOME/passwords.json"
  "$BIN/airflow" db migrate > "$RUN/airflow-migrate.log" 2>&1
  "$BIN/airflow" pools set servicedesk 4 "Calls to the service desk" > /dev/null
  if [[ $seeded == *'"status": "seeded"'* ]]; then
    # A new desk: how far the pipelines read the previous one means nothing for it.
    for variable in incident_ops.watermark.incident_closure \
        incident_ops.watermark.incident_queue_monitor; do
      "$BIN/airflow" variables delete "$variable" > /dev/null 2>&1 || true
    done
  fi
  "$BIN/airflow" connections delete servicedesk_default > /dev/null 2>&1 || true
  # Sized for its desk: the embedded RT shares this machine with Airflow, and on a busy one
  # 100 tickets with their custom fields took 22 s. Pages of 50 and a 60 s read timeout;
  # a page still too slow is asked for again smaller (desk/rt/reads.py, Pace).
  "$BIN/airflow" connections add servicedesk_default --conn-json \
    "{\"conn_type\": \"servicedesk\", \"host\": \"$DESK_URL\", \"login\": \"root\", \"password\": \"password\", \"extra\": {\"backend\": \"rt5\", \"timeout\": 60, \"page_size\": 50}}" > /dev/null
  # The secret that signs the requesters' answer links (100.7.2): kept across restarts, so
  # the links in mails already sent stay valid.
  if [[ ! -s $RUN/answer-links.secret ]]; then
    (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))' \
      > "$RUN/answer-links.secret")
  fi
  "$BIN/airflow" connections delete incident_ops_answers > /dev/null 2>&1 || true
  "$BIN/airflow" connections add incident_ops_answers --conn-json \
    "{\"conn_type\": \"generic\", \"password\": \"$(cat "$RUN/answer-links.secret")\", \"extra\": {\"valid_days\": 14}}" > /dev/null
  # `airflow standalone` starts its parts as `airflow <part>` from PATH; this wrapper starts
  # the scheduler and the triggerer without their log servers, which Airflow binds to every
  # interface whatever the settings say. On one machine the UI reads task logs from files.
  mkdir -p "$RUN/bin"
  cat > "$RUN/bin/airflow" <<SH
#!/bin/bash
case "\$1" in scheduler|triggerer) exec "$BIN/airflow" "\$@" --skip-serve-logs ;; esac
exec "$BIN/airflow" "\$@"
SH
  chmod +x "$RUN/bin/airflow"
  PATH="$RUN/bin:$PATH" start_bg airflow "$RUN/bin/airflow" standalone
  wait_http "$AIRFLOW_URL/api/v2/monitor/health" 180 "Airflow"
  wait_http "$MAILBOX_URL/" 30 "the mail catcher"
  for dag in "${UNPAUSED[@]}"; do wait_dag "$dag" 180; done
  unpaused_at=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
  for dag in "${UNPAUSED[@]}"; do
    api PATCH "/api/v2/dags/$dag" '{"is_paused": false}' > /dev/null
  done
  trap - ERR
  first_run=$(first_closure_run "$unpaused_at") || first_run=""
  if [[ -z $first_run ]]; then
    echo "warning: the first closure run did not start (see $RUN/airflow.log); the next" \
      "one starts on the schedule, within 10 minutes" >&2
    first_run="(none yet)"
  fi
  cat <<MSG

Demo running.
  Airflow UI    $AIRFLOW_URL   user admin / admin; the people of contacts.yaml
                answer the emergency's questions, each with their login as password
                (liu.yang, chen.jing, zhao.lei: team leads; zheng.gang: leader;
                sun.min: incident manager)
                first closure run: $first_run
                running on their own: incident_closure (every 10 min),
                urgent_incidents (every minute), incident_queue_monitor (every 5 min);
                emergency_response waits for a trigger; the reports and the queue
                snapshot are paused: unpause, then trigger (README, Manager reports)
  Desk (RT 5)   $DESK_URL   user root / password   (queues: Incidents, Problems, ...)
  Mailbox       $MAILBOX_URL/  every mail and SMS the pipelines sent, on-call alerts too
  Plan pages    a run's report task > Plan page (files: reports/<pipeline>/<date>/<run>.html)
  Incident ops  Airflow UI > Browse > Incident ops: plans, a ticket's trail, what is owed
  Airflow CLI   scripts/airflow dags list    (the demo's Airflow, from any shell)
Stop everything with: make stop
MSG
}

stop() {
  stop_bg airflow INT
  stop_bg mailcatcher TERM
  [[ -x $BIN/python ]] && "$BIN/python" -m incident_ops.embedded_desk stop || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
