"""Render the embedded desk's RT configuration and initialdata from the project's schema.

Everything RT needs to know about the process comes from three sources only:
``incident_ops.desk.rt.schema`` (queues, custom fields, lifecycle), ``vocabulary.yaml``
(the values of Select fields) and ``contacts.yaml`` (people with a ``desk_user`` get an RT
account). This module turns them into two Perl files:

* a site-config override (``90-embedded-desk.pm``): private database, loopback web base URL,
  no real mail, logging, and the ``incident`` lifecycle in ``%Lifecycles``;
* an initialdata file for ``rt-setup-database --action insert``: queues, custom fields with
  their values and queues, users, groups and rights, and the desk-events scrip (issue 28:
  publishes "look at ticket N" to Redis when a change matters to 100.5; ``scrips/``).

The structures are emitted as JSON and decoded by Perl's core ``JSON::PP`` so that we never
hand-escape Chinese text into Perl literals. Pure functions, no I/O beyond reading YAML.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incident_ops.desk.rt import schema

# Bump when the *shape* of what provisioning creates changes without schema.py changing
# (e.g. new rights): the schema hash then differs and a desk re-provisions.
PROVISION_VERSION = 3

# The same lookup as ``incident_ops.config``: a deployment may mount its own policy files.

# Rights on the four queues for the staff group: everything the pipelines and the people
# of the process do to a ticket (see, create, modify, own, comment, reply, watch).
QUEUE_RIGHTS = (
    "SeeQueue", "ShowTicket", "CreateTicket", "ModifyTicket", "OwnTicket", "TakeTicket",
    "StealTicket", "ReassignTicket", "CommentOnTicket", "ReplyToTicket",
    "ShowTicketComments", "ShowOutgoingEmail", "Watch", "WatchAsAdminCc", "ForwardMessage",
    "SeeCustomField", "ModifyCustomField", "SetInitialCustomField",
)
# Custom-field rights are also granted globally so a field applied to a queue later (a
# schema change) is visible without a rights migration.
GLOBAL_RIGHTS = ("SeeCustomField", "ModifyCustomField", "SetInitialCustomField",
                 "ShowSavedSearches", "CreateSavedSearch", "LoadSavedSearch", "ModifySelf")

STAFF_GROUP = "Incident Ops Staff"
# contacts.yaml role -> RT group, so a person's tier is visible in RT itself.
ROLE_GROUPS = {
    "helpdesk": "Help Desk",
    "l1": "L1 Support",
    "l2": "L2 Support",
    "incident-manager": "Incident Managers",
    "problem-manager": "Problem Managers",
}
DEMO_PASSWORD = "password"  # documented demo credential, never a real secret

SCRIPS = Path(__file__).with_name("scrips")
EVENTS_SCRIP = "incident-ops: publish desk events (100.5)"
# RT's config names of the scrip's settings; provisioning sets them from these variables of
# the environment RT starts in (docs/desk-events.md: a production RT sets them itself).
EVENTS_ENV = {"IncidentOpsEventsRedis": "INCIDENT_OPS_DESK_EVENTS_REDIS",
              "IncidentOpsEventsChannel": "INCIDENT_OPS_DESK_EVENTS_CHANNEL"}


def events_scrip() -> dict[str, str]:
    """The desk-events scrip as RT's initialdata (and a production RT's admin page) take it:
    a user-defined condition and action on the Incidents queue, at the batch stage."""
    changes = (SCRIPS / "desk_events_changes.pl").read_text(encoding="utf-8")
    return {
        "Description": EVENTS_SCRIP,
        "Queue": schema.INCIDENTS,
        "ScripCondition": "User Defined",
        "ScripAction": "User Defined",
        "Template": "Blank",
        "Stage": "TransactionBatch",
        "CustomIsApplicableCode": changes + (SCRIPS / "desk_events_applicable.pl").read_text(
            encoding="utf-8"),
        "CustomPrepareCode": "return 1;",
        "CustomCommitCode": changes + (SCRIPS / "desk_events_commit.pl").read_text(
            encoding="utf-8"),
    }


@dataclass(frozen=True)
class DeskSchema:
    """Everything provisioning writes, as plain JSON-able data."""

    lifecycles: dict[str, Any]
    initialdata: dict[str, list[dict[str, Any]]]

    @property
    def digest(self) -> str:
        """Stable hash of what provisioning would create; changes when the schema does."""
        blob = json.dumps(
            {"v": PROVISION_VERSION, "lifecycles": self.lifecycles, "data": self.initialdata},
            sort_keys=True, ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


def load_yaml(name: str, config_dir: Path | None = None) -> dict[str, Any]:
    """The config file ``name``, found and checked as the pipelines do (``config.load_yaml``)."""
    from incident_ops.config import load_yaml as load_config

    return load_config(name, config_dir)


def desk_users(contacts: dict[str, Any]) -> list[dict[str, Any]]:
    """People who get an RT account, with their contacts.yaml key and role."""
    users = []
    for key, person in (contacts.get("people") or {}).items():
        if person.get("desk_user"):
            users.append({"key": key, **person})
    return users


def lifecycle_config() -> dict[str, Any]:
    """The ``incident`` lifecycle for ``%Lifecycles`` plus maps to/from RT's default one.

    The maps let a ticket move between the Incidents queue and the other queues (which keep
    RT's default lifecycle) without RT refusing the move.
    """
    statuses = schema.LIFECYCLE_STATUSES
    active = statuses["active"]
    first_active = "in-progress" if "in-progress" in active else active[0]
    inactive = statuses["inactive"]
    resolved = "resolved" if "resolved" in inactive else inactive[0]
    closed = "closed" if "closed" in inactive else inactive[-1]
    to_default = {s: "new" for s in statuses["initial"]}
    to_default.update({s: "open" for s in active})
    to_default.update({s: "resolved" for s in inactive})
    from_default = {"new": statuses["initial"][0], "open": first_active,
                    "stalled": first_active, "resolved": resolved, "rejected": closed,
                    "deleted": closed}
    return {
        schema.LIFECYCLE: {
            "type": "ticket",
            "initial": list(statuses["initial"]),
            "active": list(active),
            "inactive": list(inactive),
            "defaults": {
                "on_create": statuses["initial"][0],
                "approved": first_active,
                "denied": closed,
                "reminder_on_open": first_active,
                "reminder_on_resolve": resolved,
            },
            "transitions": {k: list(v) for k, v in schema.LIFECYCLE_TRANSITIONS.items()},
            "rights": {"* -> *": "ModifyTicket"},
            "actions": [],
        },
        "__maps__": {
            f"{schema.LIFECYCLE} -> default": to_default,
            f"default -> {schema.LIFECYCLE}": from_default,
        },
    }


def _cf_values(cf: schema.CustomField, vocabulary: dict[str, Any]) -> list[dict[str, Any]]:
    if cf.vocabulary:
        section = vocabulary.get(cf.vocabulary)
        if not section:
            raise ValueError(f"custom field {cf.name!r}: vocabulary section "
                             f"{cf.vocabulary!r} is missing or empty")
        return [
            {"Name": code, "Description": f"{(attrs or {}).get('zh', '')} / "
                                          f"{(attrs or {}).get('en', '')}".strip(" /"),
             "SortOrder": i}
            for i, (code, attrs) in enumerate(section.items(), start=1)
        ]
    return [{"Name": v, "Description": "", "SortOrder": i}
            for i, v in enumerate(cf.values, start=1)]


def _cf_record(cf: schema.CustomField, vocabulary: dict[str, Any]) -> dict[str, Any]:
    if cf.type not in ("Select", "Freeform", "Text", "DateTime"):
        raise ValueError(f"custom field {cf.name!r}: unsupported type {cf.type!r}")
    record: dict[str, Any] = {
        "Name": cf.name,
        "Description": cf.description,
        "Type": cf.type,
        # RT: MaxValues 0 = unlimited (multiple), 1 = single.
        "MaxValues": 0 if cf.multiple else 1,
        "LookupType": "RT::Queue-RT::Ticket",
        "ApplyTo": list(cf.queues),
    }
    if cf.type == "Select":
        record["RenderType"] = "Dropdown" if not cf.multiple else "List"
        record["Values"] = _cf_values(cf, vocabulary)
    return record


def build_schema(config_dir: Path | None = None) -> DeskSchema:
    """Build the lifecycle and initialdata structures from schema.py and the YAML files."""
    vocabulary = load_yaml("vocabulary.yaml", config_dir)
    contacts = load_yaml("contacts.yaml", config_dir)
    users = desk_users(contacts)

    queues = []
    for name in schema.DESK_QUEUES:
        q: dict[str, Any] = {"Name": name, "Description": schema.QUEUES.get(name, "")}
        if name == schema.INCIDENTS:
            q["Lifecycle"] = schema.LIFECYCLE
        queues.append(q)

    groups = [{"Name": STAFF_GROUP,
               "Description": "Everyone who works incidents (rights holder)",
               "Members": {"Users": [u["desk_user"] for u in users]}}]
    for role, group in ROLE_GROUPS.items():
        members = [u["desk_user"] for u in users if u.get("role") == role]
        groups.append({"Name": group, "Description": f"contacts.yaml role {role}",
                       "Members": {"Users": members}})

    acl: list[dict[str, Any]] = []
    for queue in schema.DESK_QUEUES:
        acl.append({"Queue": queue, "Right": list(QUEUE_RIGHTS),
                    "GroupDomain": "UserDefined", "GroupId": STAFF_GROUP})
    acl.append({"Right": list(GLOBAL_RIGHTS), "GroupDomain": "UserDefined",
                "GroupId": STAFF_GROUP})

    initialdata = {
        "Users": [
            {"Name": u["desk_user"], "RealName": u.get("name", u["desk_user"]),
             "EmailAddress": u.get("email"), "Password": DEMO_PASSWORD, "Privileged": 1,
             "Comments": f"contacts.yaml {u['key']} (role {u.get('role', '-')})"}
            for u in users
        ],
        "Groups": groups,
        "Queues": queues,
        "CustomFields": [_cf_record(cf, vocabulary) for cf in schema.CUSTOM_FIELDS],
        "ACL": acl,
        "Scrips": [events_scrip()],
    }
    return DeskSchema(lifecycles=lifecycle_config(), initialdata=initialdata)


def _json_heredoc(data: Any, tag: str) -> str:
    text = json.dumps(data, ensure_ascii=True, indent=1, sort_keys=True)
    # ensure_ascii keeps the heredoc pure ASCII, so Perl's source encoding cannot matter.
    assert f"\n{tag}\n" not in text
    return f"JSON::PP->new->decode(<<'{tag}')\n{text}\n{tag}\n"


def render_initialdata(desk_schema: DeskSchema) -> str:
    """The initialdata Perl file for ``rt-setup-database --action insert``."""
    body = _json_heredoc(desk_schema.initialdata, "END_OF_DESK_DATA")
    return (
        "# Generated by incident_ops.embedded_desk from schema.py, vocabulary.yaml and\n"
        "# contacts.yaml. Do not edit: re-run `provision --force`.\n"
        "use strict;\nuse warnings;\nuse JSON::PP;\n"
        "our (@Users, @Groups, @Queues, @CustomFields, @ACL, @Scrips);\n"
        f"my $data = {body};\n"
        "@Users = @{ $data->{Users} };\n"
        "@Groups = @{ $data->{Groups} };\n"
        "@Queues = @{ $data->{Queues} };\n"
        "@CustomFields = @{ $data->{CustomFields} };\n"
        "@ACL = @{ $data->{ACL} };\n"
        "@Scrips = @{ $data->{Scrips} };\n"
        "1;\n"
    )


def render_site_config(*, db_path: Path, workdir: Path, port: int,
                       desk_schema: DeskSchema) -> str:
    """Site-config overrides, loaded after Debian's RT_SiteConfig.d files.

    The database path may be overridden by ``EMBEDDED_DESK_DB`` so provisioning can build a
    new database beside the live one and swap it in atomically.
    """
    lifecycles = _json_heredoc(desk_schema.lifecycles, "END_OF_LIFECYCLES")
    events = "\n".join(f"Set(${name}, $ENV{{{var}}} || '');" for name, var in EVENTS_ENV.items())
    return f"""# Generated by incident_ops.embedded_desk. Do not edit: it is rewritten on start.
use JSON::PP;
Set($rtname, 'embedded-desk');
Set($Organization, 'incident-ops.example.cn');
Set($CorrespondAddress, 'rt@incident-ops.example.cn');
Set($CommentAddress, 'rt-comment@incident-ops.example.cn');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, $ENV{{EMBEDDED_DESK_DB}} || {json.dumps(str(db_path))});
Set($WebPath, "");
Set($WebDomain, '127.0.0.1');
Set($WebPort, {int(port)});
Set($WebBaseURL, 'http://127.0.0.1:{int(port)}');
# Dates in the database are UTC anyway; a fixed zone makes naive DateTime values that the
# adapter writes mean the same on every machine.
Set($Timezone, 'UTC');
Set($LogToSyslog, undef);
Set($LogToSTDERR, 'warning');
Set($LogToFile, 'warning');
Set($LogDir, {json.dumps(str(workdir))});
Set($LogToFileNamed, 'rt.log');
# Never send real mail: 'testfile' writes would-be mails to a temp file.
Set($MailCommand, 'testfile');
Set($MasonDataDir, {json.dumps(str(workdir / "mason_data"))});
Set($MasonSessionDir, {json.dumps(str(workdir / "session_data"))});
Set($DisableGraphViz, 1);
Set($DisableGD, 1);
# Desk events (issue 28): where the scrip publishes; empty: nowhere (the poll still works).
{events}
Set(%Lifecycles, %{{ {lifecycles} }});
1;
"""
