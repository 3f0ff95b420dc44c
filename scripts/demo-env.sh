# The demo's environment, in one place: sourced by scripts/demo.sh (make demo) and by
# scripts/airflow (the Airflow CLI of the demo, from any shell). Not meant to be run.
#
# Every value can be given from outside (e.g. DEMO_AIRFLOW_PORT=9080 make demo); what the
# demo started with is saved in .run/demo.env and read back here first, so a new shell
# talks to the running demo, not to a second, empty Airflow.
DEMO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO_RUN=$DEMO_ROOT/.run
if [[ -f $DEMO_RUN/demo.env ]]; then  # NAME=value lines (printf %q); the caller's env wins
  while IFS= read -r _line; do
    [[ $_line =~ ^[A-Z_][A-Z0-9_]*= ]] || continue
    _name=${_line%%=*}
    if [[ -z ${!_name+x} ]]; then eval "export $_line"; fi
  done < "$DEMO_RUN/demo.env"
  unset _line _name
fi

: "${DEMO_AIRFLOW_PORT:=8080}"   # Airflow UI and REST API
: "${DESK_PORT:=8480}"           # the desk (Request Tracker 5)
: "${DEMO_SMTP_PORT:=1025}"      # the mail catcher's SMTP
: "${DEMO_MAIL_PORT:=8026}"      # the mailbox page and the SMS gateway
: "${INCIDENT_OPS_ALERT_TO:=oncall@ops.example.cn}"  # on-call alerts land in the mailbox too
export DEMO_AIRFLOW_PORT DESK_PORT DEMO_SMTP_PORT DEMO_MAIL_PORT INCIDENT_OPS_ALERT_TO

export PATH=$DEMO_ROOT/.venv/bin:$PATH  # `airflow standalone` starts `airflow ...` from PATH
# This checkout's code, whichever checkout the venv was installed from.
export PYTHONPATH=$DEMO_ROOT/include${PYTHONPATH:+:$PYTHONPATH}
export DESK_WORKDIR=$DEMO_ROOT/.desk
export AIRFLOW_HOME=$DEMO_RUN/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$DEMO_ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$DEMO_ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
# Airflow's LocalExecutor minus the race that failed a question answered within a second or two
# of being asked (incident_ops/airflow/provider/executor.py, issue 24).
export AIRFLOW__CORE__EXECUTOR=incident_ops.airflow.provider.executor.LocalExecutor
# SQLite (what standalone runs on) lets one writer in at a time; Airflow's components wait up
# to 5 s for it by default, too short when four of them start their first runs together.
# The module lives in $AIRFLOW_HOME/config, which Airflow puts on sys.path (demo.sh writes it).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=incident_ops_demo_db.CONNECT_ARGS
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
# The retention DAG (incident_ops_maintenance, paused in the demo) reaches the metadata DB
# through this connection: standalone's SQLite file.
export AIRFLOW_CONN_INCIDENT_OPS_METADATA_DB=sqlite:///$AIRFLOW_HOME/airflow.db
# Simple auth manager (what standalone uses): user admin, its password from our own file.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/passwords.json
export AIRFLOW__API__HOST=127.0.0.1  # loopback only (the default listens on 0.0.0.0)
export AIRFLOW__API__PORT=$DEMO_AIRFLOW_PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$DEMO_AIRFLOW_PORT/execution/
export INCIDENT_OPS_AIRFLOW_URL=http://127.0.0.1:$DEMO_AIRFLOW_PORT
export INCIDENT_OPS_REPORTS_DIR=$DEMO_ROOT/reports
export AIRFLOW_CONN_SMTP_DEFAULT="smtp://127.0.0.1:$DEMO_SMTP_PORT?disable_ssl=true&disable_tls=true&from_email=incident-ops%40ops.example.cn"
export AIRFLOW_CONN_SMS_DEFAULT="{\"conn_type\": \"sms_gateway\", \"host\": \"http://127.0.0.1:$DEMO_MAIL_PORT/sms\"}"
# Every Airflow CLI call warned that the optional graphviz package is missing (it only draws
# `airflow dags show` as an image, which the demo never does): silenced.
export PYTHONWARNINGS="ignore:Could not import graphviz${PYTHONWARNINGS:+,$PYTHONWARNINGS}"
