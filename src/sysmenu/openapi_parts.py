"""Pieces the OpenAPI documents share: parameters, the error response, content helpers."""

from __future__ import annotations

from typing import Any

from .access import SOURCES
from .arguments import TYPES
from .database import MAX_ID

ERROR = {"$ref": "#/components/responses/Error"}
DENIED = {"403": ERROR}
RUN = {"$ref": "#/components/schemas/Run"}
SOURCE_PARAMETER = {
    "name": "source",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(SOURCES)},
}
TIME_FORMS = (
    "ISO 8601 (2026-11-24, 2026-11-24T18:30), today, yesterday, now, or an age like 90s, 15m, 2h, 7d, 1w"
)
TIME_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": ["now", "today", "yesterday"]},
        {"type": "string", "pattern": "^[0-9]{1,6}(\\.[0-9]{1,3})?[smhdw]$"},
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
    ]
}
SINCE_UNTIL = [
    {"name": "since", "in": "query", "description": f"At or after: {TIME_FORMS}", "schema": TIME_SCHEMA},
    {"name": "until", "in": "query", "description": f"Before: {TIME_FORMS}", "schema": TIME_SCHEMA},
]
RUN_ID_PARAMETER = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def paging(max_limit: int) -> list[dict[str, Any]]:
    """The ``before`` (an id: the page before it) and ``limit`` parameters of a paged list."""
    return [
        {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": max_limit}},
    ]


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# One command's verdict in GET /api/status (`sysmenu doctor`'s, as the server's user).
VERDICT = {
    "type": "object",
    "required": ["source", "action", "runnable", "why", "fix"],
    "properties": {
        "source": {"type": "string"},
        "action": {"type": "string"},
        "runnable": {"type": "boolean", "nullable": True, "description": "null: could not tell"},
        "why": {"type": "string", "nullable": True},
        "fix": {"type": "string", "nullable": True},
    },
}


def components() -> dict[str, Any]:
    """The document's shared schemas and responses."""
    return {
        "securitySchemes": {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "apikey"},
            "Bearer": {"type": "http", "scheme": "bearer"},
            "Session": {"type": "apiKey", "in": "cookie", "name": "sysmenu_session_P<port>"},
        },
        "responses": {
            "Error": json_content(
                {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "An error",
            )
        },
        "schemas": {
            "ClientSpec": {
                "type": "object",
                "required": ["action", "source", "resource"],
                "properties": {
                    "action": {"type": "string"},
                    "name": {"type": "string"},
                    "confirm": {"type": "string"},
                    "source": {"type": "string"},
                    "resource": {"type": "string"},
                    "fresh_credentials": {"type": "boolean"},
                    "arguments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "type", "required"],
                            "properties": {
                                "name": {"type": "string"},
                                "type": {
                                    "type": "string",
                                    "enum": list(TYPES),
                                },
                                "required": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
            "Run": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "integer"},
                    "source": {"type": "string"},
                    "action": {"type": "string"},
                    "name": {"type": "string"},
                    "state": {"type": "string"},
                    "returncode": {"type": "integer", "nullable": True},
                    "signal": {"type": "integer", "nullable": True},
                    "started": {"type": "number"},
                    "ended": {"type": "number", "nullable": True},
                    "duration": {"type": "number", "nullable": True},
                    "stdout": {"type": "string"},
                    "stderr": {"type": "string"},
                    "resource": {"type": "string"},
                    "arguments": {"type": "object", "description": "the values given (secrets masked)"},
                },
            },
        },
    }
