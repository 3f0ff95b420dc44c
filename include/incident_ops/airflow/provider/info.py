"""Airflow provider metadata for incident-ops: our two connection types and their UI forms.

Airflow finds this through the ``apache_airflow_provider`` entry point in ``pyproject.toml``.
Airflow 3.3 renders connection forms from the declarative ``conn-fields`` (JSON schema per
extra field) and ``ui-field-behaviour`` given here, without importing the hook classes;
a hook that is only dropped into ``plugins/`` works by conn id but gets no form.

Extra fields are stored in the connection's ``extra`` JSON under their bare names
(``{"backend": "rt5", "timeout": 30}``), which is what the hooks read.

This module is imported by every ``airflow`` CLI call and by the API server: it must stay
free of imports beyond the standard library.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

PACKAGE_NAME = "incident-ops"  # must equal the distribution name, Airflow checks it

SERVICEDESK_CONN_TYPE = "servicedesk"
SMS_GATEWAY_CONN_TYPE = "sms_gateway"

# Defaults live here once: the hooks read them from this module so that the form and the
# code cannot disagree on what an empty field means.
SERVICEDESK_DEFAULTS: dict[str, Any] = {
    "backend": "rt5",
    "verify_tls": True,
    "timeout": 30,
    "page_size": 100,
    "max_concurrency": 4,
}
SERVICEDESK_BACKENDS = ("rt5",)

SMS_DEFAULT_BODY_TEMPLATE = '{"to": "{to}", "text": "{text}", "id": "{key}"}'
SMS_DEFAULTS: dict[str, Any] = {
    "method": "POST",
    "body_template": SMS_DEFAULT_BODY_TEMPLATE,
    "headers": None,
    "timeout": 10,
    "max_retries": 3,
}
SMS_METHODS = ("POST", "PUT")


def _version() -> str:
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:  # imported from a source tree without installing
        return "0.0.0"


def _servicedesk_connection_type() -> dict[str, Any]:
    return {
        "hook-class-name": "incident_ops.airflow.provider.desk_hook.ServiceDeskHook",
        "hook-name": "Service Desk (ITIL)",
        "connection-type": SERVICEDESK_CONN_TYPE,
        "conn-fields": {
            "backend": {
                "label": "Desk backend",
                "description": "Which adapter talks to this URL: rt5 = Request Tracker 5 (REST2).",
                "schema": {
                    "type": ["string", "null"],
                    "enum": list(SERVICEDESK_BACKENDS),
                    "default": SERVICEDESK_DEFAULTS["backend"],
                },
            },
            "token": {
                "label": "API token",
                "description": "Used instead of login/password when set (RT auth token).",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "verify_tls": {
                "label": "Verify TLS certificate",
                "schema": {
                    "type": ["boolean", "null"],
                    "default": SERVICEDESK_DEFAULTS["verify_tls"],
                },
            },
            "timeout": {
                "label": "Request timeout (seconds)",
                "schema": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "default": SERVICEDESK_DEFAULTS["timeout"],
                },
            },
            "page_size": {
                "label": "Search page size",
                "description": "Tickets per search request (RT's REST2 serves at most 100).",
                "schema": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": 1000,
                    "default": SERVICEDESK_DEFAULTS["page_size"],
                },
            },
            "max_concurrency": {
                "label": "Max concurrent requests",
                "description": "Per task; the Airflow pool bounds the total across tasks.",
                "schema": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": 32,
                    "default": SERVICEDESK_DEFAULTS["max_concurrency"],
                },
            },
        },
        "ui-field-behaviour": {
            # The base URL carries scheme and port, so schema/port would only confuse.
            "hidden-fields": ["schema", "port", "extra"],
            "relabeling": {"host": "Base URL", "login": "User"},
            "placeholders": {
                "host": "http://127.0.0.1:8480",
                "login": "root",
                "timeout": str(SERVICEDESK_DEFAULTS["timeout"]),
                "page_size": str(SERVICEDESK_DEFAULTS["page_size"]),
                "max_concurrency": str(SERVICEDESK_DEFAULTS["max_concurrency"]),
            },
        },
    }


def _sms_gateway_connection_type() -> dict[str, Any]:
    return {
        "hook-class-name": "incident_ops.airflow.provider.sms_hook.SmsGatewayHook",
        "hook-name": "SMS gateway (HTTP)",
        "connection-type": SMS_GATEWAY_CONN_TYPE,
        "conn-fields": {
            "method": {
                "label": "HTTP method",
                "schema": {
                    "type": ["string", "null"],
                    "enum": list(SMS_METHODS),
                    "default": SMS_DEFAULTS["method"],
                },
            },
            "body_template": {
                "label": "JSON body template",
                "description": (
                    'A JSON document; the string values "{to}" (list of numbers), "{to_csv}", '
                    '"{text}" and "{key}" are replaced, also inside longer strings.'
                ),
                "schema": {"type": ["string", "null"], "default": SMS_DEFAULT_BODY_TEMPLATE},
            },
            "headers": {
                "label": "Extra HTTP headers (JSON object)",
                "description": 'e.g. {"X-Api-Key": "..."}; kept secret like a password.',
                # Gateways put their API key in a header, so the whole field is a secret.
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "timeout": {
                "label": "Request timeout (seconds)",
                "schema": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "default": SMS_DEFAULTS["timeout"],
                },
            },
            "max_retries": {
                "label": "Retries on 5xx/429/connect errors",
                "schema": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "maximum": 10,
                    "default": SMS_DEFAULTS["max_retries"],
                },
            },
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "extra"],
            "relabeling": {"host": "Gateway URL"},
            "placeholders": {
                "host": "https://sms.example.cn/api/v1/messages",
                "login": "optional basic-auth user",
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Provider metadata in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Incident Ops",
        "description": "ITIL incident automation: service desk and SMS gateway connections.",
        "versions": [_version()],
        "integrations": [
            {"integration-name": "Service Desk (ITIL)", "tags": ["service"]},
            {"integration-name": "SMS gateway (HTTP)", "tags": ["service"]},
        ],
        "hooks": [
            {
                "integration-name": "Service Desk (ITIL)",
                "python-modules": ["incident_ops.airflow.provider.desk_hook"],
            },
            {
                "integration-name": "SMS gateway (HTTP)",
                "python-modules": ["incident_ops.airflow.provider.sms_hook"],
            },
        ],
        "connection-types": [_servicedesk_connection_type(), _sms_gateway_connection_type()],
    }
