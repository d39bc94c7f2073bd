"""The OpenAPI paths of the no-printer endpoints and the Application Keys flow (merged into
the document by openapi.py, so the fuzzing suite covers them too)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_OBJECT = {"type": "object"}


def _json(description: str, schema: dict[str, Any] = _OBJECT) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _get(summary: str, ok: str = "200", **extra: Any) -> dict[str, Any]:
    responses = {ok: _json(summary) if ok != "204" else {"description": summary}, "403": _ERROR}
    return {"get": {"summary": summary, "responses": responses | extra}}


def compat_paths() -> dict[str, Any]:
    bad = {"400": _ERROR, "403": _ERROR, "415": _ERROR}
    token = {"in": "path", "required": True, "schema": {"type": "string"}}
    public: list[dict[str, Any]] = []
    return {
        "/api/job": _get("No job: every field null, state Offline"),
        "/api/printer": {
            "get": {"summary": "No printer: 409", "responses": {"409": _ERROR, "403": _ERROR}},
        },
        "/api/connection": {
            **_get("Closed, no ports"),
            "post": {
                "summary": "connect, disconnect or fake_ack: accepted, nothing changes",
                "requestBody": _body(
                    {"command": {"type": "string", "enum": ["connect", "disconnect", "fake_ack"]}},
                    ["command"],
                ),
                "responses": {"204": {"description": "Accepted"}, **bad},
            },
        },
        "/api/settings": _get("The settings clients read (no secrets)"),
        "/api/util/test": {
            "post": {
                "summary": "The address test",
                "requestBody": _body(
                    {
                        "command": {"type": "string", "enum": ["address"]},
                        "address": {"type": "string", "nullable": True},
                    },
                    ["command"],
                ),
                "responses": {"200": _json("The address, whether on a LAN, its subnet"), **bad},
            }
        },
        "/api/system/info": _get("Host facts (SYSTEM permission)"),
        "/api/system/usage": _get("Disk and memory, free and total (SYSTEM permission)"),
        "/api/plugin/appkeys": _get("The caller's keys and the key requests it may decide"),
        "/plugin/appkeys/probe": {
            "get": {
                "summary": "The flow is supported",
                "security": public,
                "responses": {"204": {"description": "Supported"}},
            },
        },
        "/plugin/appkeys/request": {
            "post": {
                "summary": "An app asks for a key",
                "security": public,
                "requestBody": _body(
                    {"app": {"type": "string", "minLength": 1}, "user": {"type": "string", "nullable": True}},
                    ["app"],
                ),
                "responses": {
                    "201": _json("The app token; Location is the poll URL"),
                    "400": _ERROR,
                    "429": _ERROR,
                },
            }
        },
        "/plugin/appkeys/request/{app_token}": {
            "get": {
                "summary": "Poll: 202 pending, 200 with the key once, 404 denied or expired",
                "security": public,
                "parameters": [{"name": "app_token", **token}],
                "responses": {"200": _json("The key"), "202": _json("Pending"), "404": _ERROR},
            }
        },
        "/plugin/appkeys/decision/{user_token}": {
            "post": {
                "summary": "Approve or deny (the named user, or an admin)",
                "parameters": [{"name": "user_token", **token}],
                "requestBody": _body({"decision": {"type": "boolean"}}, ["decision"]),
                "responses": {"204": {"description": "Decided"}, "400": _ERROR, "403": _ERROR, "404": _ERROR},
            }
        },
    }
