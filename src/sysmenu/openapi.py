"""The OpenAPI document served at ``/api/openapi.json`` (used by the fuzzing suite)."""

from __future__ import annotations

from typing import Any

from . import __version__
from .access import SOURCES
from .openapi_compat import compat_paths
from .openapi_parts import (
    DENIED,
    ERROR,
    RUN,
    SOURCE_PARAMETER,
    components,
    json_body,
    json_content,
)
from .openapi_runs import audit_paths, events_paths, history_paths, run_paths

CLIENT_SPEC = {"$ref": "#/components/schemas/ClientSpec"}
SPEC_LIST = {"type": "array", "items": CLIENT_SPEC}
SESSION_USER = {
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


# What running a command may answer besides success (OctoPrint's path and the per-command one).
EXECUTE_ERRORS = dict.fromkeys(("400", "404", "409", "422", "500", "503"), ERROR)


def _command_paths() -> dict[str, Any]:
    """The versions and the deprecated way to run a custom action."""
    return {
        "/api/version": {
            "get": {
                "summary": "API and server version",
                "responses": {
                    "200": json_content(
                        {"type": "object", "required": ["api", "server", "text"]}, "Versions"
                    ),
                    **DENIED,
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
                    **EXECUTE_ERRORS,
                    **DENIED,
                },
            }
        },
    }


def _command_list_paths() -> dict[str, Any]:
    """The command lists and running a command (OctoPrint's shapes)."""
    return {
        "/api/system/commands": {
            "get": {
                "summary": "All commands by source",
                "responses": {
                    "200": json_content(
                        {
                            "type": "object",
                            "properties": {source: SPEC_LIST for source in SOURCES},
                        },
                        "Commands",
                    ),
                    **DENIED,
                },
            }
        },
        "/api/system/commands/{source}": {
            "get": {
                "summary": "The commands of one source",
                "parameters": [SOURCE_PARAMETER],
                "responses": {"200": json_content(SPEC_LIST, "Commands"), "404": ERROR, **DENIED},
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
                    "202": json_content(RUN, "Started; Location names the run"),
                    **EXECUTE_ERRORS,
                    **DENIED,
                },
            }
        },
    }


def _session_paths() -> dict[str, Any]:
    """Logging in and out, and who is logged in (the page's session)."""
    return {
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
                    "200": json_content(SESSION_USER, "The user, with csrf_token and fresh_until"),
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
                "responses": {"200": json_content(SESSION_USER, "Logged out: nobody"), **DENIED},
            }
        },
        "/api/currentuser": {
            "get": {
                "summary": "Who the request is; name null when no one",
                "security": [],
                "responses": {"200": json_content(SESSION_USER, "The user")},
            }
        },
    }


def _monitoring_paths() -> dict[str, Any]:
    """Health checks and metrics."""
    return {
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
                    **DENIED,
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sysmenu",
            "version": __version__,
            "description": "OctoPrint-compatible System API, plus sysmenu's run API.",
        },
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {"Bearer": []}, {"Session": []}],
        "paths": compat_paths()
        | _command_paths()
        | _command_list_paths()
        | history_paths()
        | audit_paths()
        | run_paths()
        | _session_paths()
        | _monitoring_paths()
        | events_paths(),
        "components": components(),
    }
