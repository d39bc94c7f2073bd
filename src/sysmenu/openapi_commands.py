"""The OpenAPI document a SYSTEM caller gets: the generic one, plus each command with
arguments on its own path, described by its arguments' JSON Schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .openapi import openapi_document
from .openapi_parts import ERROR, json_body, json_content

if TYPE_CHECKING:
    from .catalogue import Catalogue


def command_paths(catalogue: Catalogue) -> dict[str, Any]:
    """One path per command with arguments, its body described by the arguments'
    JSON Schema (a concrete path goes before the templated one)."""
    paths: dict[str, Any] = {}
    for source, specs in catalogue.specs.items():
        for spec in specs:
            if not spec.arguments:
                continue
            properties = {argument.name: argument.json_schema() for argument in spec.arguments}
            required = [argument.name for argument in spec.arguments if argument.required]
            arguments: dict[str, Any] = {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
            }
            if required:
                arguments["required"] = required
            body = {"type": "object", "required": ["arguments"], "properties": {"arguments": arguments}}
            path = f"/api/system/commands/{source}/{quote(spec.action, safe='')}"
            paths[path] = {
                "post": {
                    "summary": f"Run {spec.name}",
                    "requestBody": json_body(body),
                    "responses": {
                        "204": {"description": "Done (or started, for async commands)"},
                        "202": json_content({"$ref": "#/components/schemas/Run"}, "Started"),
                        "400": ERROR,
                        "409": ERROR,
                        "422": ERROR,
                        "500": ERROR,
                        "403": ERROR,
                    },
                }
            }
    return paths


def described(catalogue: Catalogue) -> dict[str, Any]:
    """The document a SYSTEM caller gets: each command with arguments on its own path;
    the generic execute paths say they need those commands' arguments (no body there)."""
    document = openapi_document()
    paths = document["paths"]
    needing = sorted(
        spec.action
        for spec in catalogue.specs["custom"]
        if any(argument.required for argument in spec.arguments)
    )
    legacy = paths["/api/system"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    legacy["properties"]["action"]["not"]["enum"] += needing
    execute = paths["/api/system/commands/{source}/{action}"]["post"]["parameters"][1]
    execute["schema"]["not"]["enum"] += sorted(
        {spec.action for specs in catalogue.specs.values() for spec in specs if spec.arguments}
    )
    document["paths"] = command_paths(catalogue) | paths
    return document
