"""The OpenAPI document served at ``/api/openapi.json`` (used by the fuzzing suite)."""

from __future__ import annotations

from typing import Any

from . import __version__
from .access import SOURCES
from .audit import MAX_AUDIT_PAGE
from .models import RUN_STATES
from .openapi_compat import compat_paths
from .openapi_parts import (
    ERROR,
    RUN_ID_PARAMETER,
    SINCE_UNTIL,
    SOURCE_PARAMETER,
    VERDICT,
    components,
    json_body,
    json_content,
    paging,
)
from .runlog import MAX_RUNS_PAGE


def openapi_document() -> dict[str, Any]:
    client_spec = {"$ref": "#/components/schemas/ClientSpec"}
    spec_list = {"type": "array", "items": client_spec}
    run = {"$ref": "#/components/schemas/Run"}
    denied = {"403": ERROR}
    session_user = {
        "type": "object",
        "required": ["name", "groups", "permissions"],
        "properties": {
            "name": {"type": "string", "nullable": True},
            "groups": {"type": "array", "items": {"type": "string"}},
            "permissions": {"type": "array", "items": {"type": "string"}},
            "csrf_token": {"type": "string"},
            "fresh_until": {"type": "number"},
            "may": {
                "type": "object",
                "description": "What the page may offer: commands to run, history, kill any run, audit",
                "properties": {
                    "run": {"type": "array", "items": {"type": "string"}},
                    "history": {"type": "boolean"},
                    "kill_any": {"type": "boolean"},
                    "audit": {"type": "boolean"},
                },
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sysmenu",
            "version": __version__,
            "description": "OctoPrint-compatible System API, plus sysmenu's run API.",
        },
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {"Bearer": []}, {"Session": []}],
        "paths": compat_paths()
        | {
            "/api/version": {
                "get": {
                    "summary": "API and server version",
                    "responses": {
                        "200": json_content(
                            {"type": "object", "required": ["api", "server", "text"]}, "Versions"
                        ),
                        **denied,
                    },
                }
            },
            "/api/system": {
                "post": {
                    "summary": "Deprecated: run a custom action named in the body",
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                "action": {"type": "string", "minLength": 1, "not": {"enum": ["divider"]}}
                            },
                        }
                    ),
                    "responses": {
                        "204": {"description": "Done"},
                        "202": {"description": "Started"},
                        "400": ERROR,
                        "404": ERROR,
                        "409": ERROR,
                        "422": ERROR,
                        "500": ERROR,
                        "503": ERROR,
                        **denied,
                    },
                }
            },
            "/api/system/commands": {
                "get": {
                    "summary": "All commands by source",
                    "responses": {
                        "200": json_content(
                            {
                                "type": "object",
                                "properties": {source: spec_list for source in SOURCES},
                            },
                            "Commands",
                        ),
                        **denied,
                    },
                }
            },
            "/api/system/commands/{source}": {
                "get": {
                    "summary": "The commands of one source",
                    "parameters": [SOURCE_PARAMETER],
                    "responses": {"200": json_content(spec_list, "Commands"), "404": ERROR, **denied},
                }
            },
            "/api/system/commands/{source}/{action}": {
                "post": {
                    "summary": "Run a command",
                    "parameters": [
                        SOURCE_PARAMETER,
                        {
                            "name": "action",
                            "in": "path",
                            "required": True,
                            "description": "divider is not executable (400)",
                            "schema": {"type": "string", "not": {"enum": ["divider"]}},
                        },
                        {
                            "name": "Prefer",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "respond-async: answer 202 with the run's Location",
                        },
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "schema": {"type": "string", "maxLength": 255},
                        },
                    ],
                    "responses": {
                        "204": {"description": "Done (or started, for async commands)"},
                        "202": json_content(run, "Started; Location names the run"),
                        "400": ERROR,
                        "404": ERROR,
                        "409": ERROR,
                        "422": ERROR,
                        "500": ERROR,
                        "503": ERROR,
                        **denied,
                    },
                }
            },
            "/api/status": {
                "get": {
                    "summary": "sysmenu's state: version, config in force or rejected, running runs, "
                    "and whether each command can run here",
                    "responses": {
                        "200": json_content(
                            {
                                "type": "object",
                                "required": ["version", "config", "running", "commands"],
                                "properties": {"commands": {"type": "array", "items": VERDICT}},
                            },
                            "Status",
                        ),
                        **denied,
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
                                    "runs": {"type": "array", "items": run},
                                    "next": {"type": "string"},
                                },
                            },
                            "A page",
                        ),
                        "400": ERROR,
                        **denied,
                    },
                }
            },
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
                        **denied,
                    },
                }
            },
            "/api/runs/{run_id}": {
                "get": {
                    "summary": "One run with its output",
                    "parameters": [RUN_ID_PARAMETER],
                    "responses": {"200": json_content(run, "The run"), "404": ERROR, **denied},
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
                        **denied,
                    },
                }
            },
            "/api/login": {
                "post": {
                    "summary": "Log in: a session cookie (HttpOnly, SameSite=Strict) and its CSRF token",
                    "security": [],
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "required": ["user", "pass"],
                            "properties": {
                                "user": {"type": "string", "minLength": 1},
                                "pass": {"type": "string"},
                            },
                        }
                    ),
                    "responses": {
                        "200": json_content(session_user, "The user, with csrf_token and fresh_until"),
                        "400": ERROR,
                        "403": ERROR,
                        "415": ERROR,
                        "429": ERROR,
                    },
                }
            },
            "/api/logout": {
                "post": {
                    "summary": "End the session (with a session: X-CSRF-Token required)",
                    "responses": {"200": json_content(session_user, "Logged out: nobody"), **denied},
                }
            },
            "/api/currentuser": {
                "get": {
                    "summary": "Who the request is; name null when no one",
                    "security": [],
                    "responses": {"200": json_content(session_user, "The user")},
                }
            },
            "/api/health": {
                "get": {
                    "summary": "Fit to serve? (no key): ok, or 503 naming the failing checks",
                    "security": [],
                    "responses": {
                        "200": json_content(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"type": "string"}},
                            },
                            "Healthy",
                        ),
                        "503": json_content(
                            {
                                "type": "object",
                                "required": ["status", "checks", "error"],
                                "properties": {
                                    "status": {"type": "string"},
                                    "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "error": {"type": "string"},
                                },
                            },
                            "Unhealthy: each failing check (store, config, loop) and why",
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, text format 0.0.4 (SYSTEM, unless sysmenu.metrics_open)",
                    "responses": {
                        "200": {
                            "description": "Metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **denied,
                    },
                }
            },
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
                        **denied,
                    },
                }
            },
        },
        "components": components(),
    }
