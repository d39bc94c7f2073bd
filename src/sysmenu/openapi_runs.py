"""The OpenAPI paths of sysmenu's own run API: status, run history, the audit log, a run,
its kill and its live output (OctoPrint has none of them)."""

from __future__ import annotations

from typing import Any

from .audit import MAX_AUDIT_PAGE
from .models import RUN_STATES
from .openapi_parts import DENIED, ERROR, RUN, RUN_ID_PARAMETER, SINCE_UNTIL, VERDICT, json_content, paging
from .runlog import MAX_RUNS_PAGE


def history_paths() -> dict[str, Any]:
    """The server's status and the run history."""
    return {
        "/api/status": {
            "get": {
                "summary": "sysmenu's state: version, config in force or rejected, running runs, "
                "and whether each command can run here",
                "responses": {
                    "200": json_content(
                        {
                            "type": "object",
                            "required": ["version", "config", "running", "commands"],
                            "properties": {
                                "commands": {"type": "array", "items": VERDICT},
                                "mqtt": {
                                    "type": "object",
                                    "nullable": True,
                                    "description": "the MQTT link (null without sysmenu.mqtt): broker,"
                                    " prefix, connected, protocol, last_error, queued, dropped",
                                },
                            },
                        },
                        "Status",
                    ),
                    **DENIED,
                },
            }
        },
        "/api/runs": {
            "get": {
                "summary": "Runs, newest first",
                "parameters": [
                    {"name": "source", "in": "query", "schema": {"type": "string"}},
                    {"name": "action", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": list(RUN_STATES),
                        },
                    },
                    *SINCE_UNTIL,
                    *paging(MAX_RUNS_PAGE),
                ],
                "responses": {
                    "200": json_content(
                        {
                            "type": "object",
                            "required": ["runs"],
                            "properties": {
                                "runs": {"type": "array", "items": RUN},
                                "next": {"type": "string"},
                            },
                        },
                        "A page",
                    ),
                    "400": ERROR,
                    **DENIED,
                },
            }
        },
    }


def audit_paths() -> dict[str, Any]:
    """The audit log (admins only)."""
    return {
        "/api/audit": {
            "get": {
                "summary": "The audit log, newest first (admins only)",
                "parameters": [
                    *SINCE_UNTIL,
                    {"name": "user", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "event",
                        "in": "query",
                        "description": "One event or several, comma-separated",
                        "schema": {"type": "string"},
                    },
                    *paging(MAX_AUDIT_PAGE),
                ],
                "responses": {
                    "200": json_content(
                        {
                            "type": "object",
                            "required": ["entries"],
                            "properties": {
                                "entries": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["id", "ts", "event", "detail", "hash"],
                                    },
                                },
                                "next": {"type": "string"},
                            },
                        },
                        "A page",
                    ),
                    "400": ERROR,
                    **DENIED,
                },
            }
        },
    }


def run_paths() -> dict[str, Any]:
    """One run, and killing it."""
    return {
        "/api/runs/{run_id}": {
            "get": {
                "summary": "One run with its output",
                "parameters": [RUN_ID_PARAMETER],
                "responses": {"200": json_content(RUN, "The run"), "404": ERROR, **DENIED},
            }
        },
        "/api/runs/{run_id}/kill": {
            "post": {
                "summary": "Kill a running run (SIGTERM to its group, SIGKILL after a grace)",
                "parameters": [RUN_ID_PARAMETER],
                "responses": {
                    "202": json_content({"type": "object"}, "Killing"),
                    "404": ERROR,
                    "409": ERROR,
                    **DENIED,
                },
            }
        },
    }


def events_paths() -> dict[str, Any]:
    """A run's live output."""
    return {
        "/api/runs/{run_id}/events": {
            "get": {
                "summary": "Server-sent events: start, output (stream, text), end",
                "parameters": [RUN_ID_PARAMETER],
                "responses": {
                    "200": {
                        "description": "An event stream",
                        "content": {
                            "text/event-stream": {
                                "schema": {
                                    "type": "object",
                                    "description": "start, output {stream, text}, end {state, ...}",
                                }
                            }
                        },
                    },
                    "404": ERROR,
                    **DENIED,
                },
            }
        },
    }
