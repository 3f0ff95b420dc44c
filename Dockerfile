# syntax=docker/dockerfile:1
# The project's Airflow image: the official Airflow image, pinned, plus the project's pinned
# Python set (requirements.txt) and the incident-ops package (hooks, connection types,
# policy, templates). docker-compose.yml runs every Airflow component from it.
#
# No secrets in here, ever: connections, keys and passwords come from the environment at
# run time (.env, see docs/deploy.md); .dockerignore keeps .env out of the build context.
# DAGs, plugins and the policy files are mounted at run time; changing the package code
# (include/incident_ops) needs a rebuild: docker compose build.
ARG AIRFLOW_BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

ARG AIRFLOW_VERSION=3.3.2
LABEL org.opencontainers.image.title="incident-ops-airflow" \
      org.opencontainers.image.description="Airflow with the incident-ops pipelines' package" \
      org.opencontainers.image.licenses="Apache-2.0"

# Chromium prints the Major Incident Report to PDF (incident_ops/reports/pdf.py) with a
# Chinese font to embed; without them the report goes out as HTML only.
USER root
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       chromium fonts-wqy-microhei \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow

# The official image installs Python packages as the airflow user. Naming apache-airflow
# again keeps pip from moving Airflow itself while it installs the rest of the set.
COPY --chown=airflow:0 requirements.txt /opt/incident-ops/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/incident-ops/requirements.txt

# The package itself, without dependencies: they are all pinned above. It carries the
# plugin (entry point) and the DAG files (dags/, as incident_ops/dags).
COPY --chown=airflow:0 pyproject.toml LICENSE /opt/incident-ops/
COPY --chown=airflow:0 include/incident_ops /opt/incident-ops/include/incident_ops
COPY --chown=airflow:0 dags /opt/incident-ops/dags
RUN pip install --no-cache-dir --no-deps /opt/incident-ops \
    && python -c "import incident_ops.airflow.provider as p; print(p.get_provider_info()['package-name'])"

# Default policy files, for a container run without the repository mounted; compose mounts
# include/ and points INCIDENT_OPS_CONFIG_DIR at the mounted copy instead.
COPY --chown=airflow:0 include/config /opt/incident-ops/config
# Directories the compose volumes mount over: a fresh named volume takes their owner and
# mode. Group 0 may write, as everywhere in the official image: the containers run as
# AIRFLOW_UID (any uid) with gid 0.
RUN mkdir -p /opt/airflow/reports /opt/airflow/outbox /opt/airflow/auth \
    && chmod 0775 /opt/airflow/reports /opt/airflow/outbox /opt/airflow/auth
ENV INCIDENT_OPS_CONFIG_DIR=/opt/incident-ops/config \
    INCIDENT_OPS_REPORTS_DIR=/opt/airflow/reports
