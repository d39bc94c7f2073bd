"""Where a config problem is: the line of a key path in the YAML node tree, and the
message that names file, line, key path and value."""

from __future__ import annotations

from typing import Any

Loc = tuple[int | str, ...]
Problem = tuple[Loc, str, bool]  # where, what, whether it is an unknown key


def line_of(node: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the key (or list item) at `loc` in a YAML node tree: as deep
    as the path exists, so a missing key is placed at its parent."""
    line: int | None = None
    for key in loc:
        children = getattr(node, "value", None)
        if not isinstance(children, list):
            break
        if isinstance(key, int) and node.id == "sequence" and 0 <= key < len(children):
            node = children[key]
            line = node.start_mark.line + 1
        elif node.id == "mapping":
            # the last of duplicate keys is the one in force, as in the loaded data
            pairs = [(k, v) for k, v in children if getattr(k, "value", None) == str(key)]
            if not pairs:
                break
            key_node, node = pairs[-1]
            line = key_node.start_mark.line + 1
        else:
            break
    return line


def _value_at(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    node = data
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, node


def describe(problems: list[Problem], data: Any, tree: Any, source: str) -> str:
    lines = []
    for loc, message, unknown in problems:
        path = ".".join(str(k) for k in loc)
        line = line_of(tree, loc)
        found, value = _value_at(data, loc)
        where = f"{source}, line {line}" if line else source
        if unknown:
            lines.append(f"{where}: unknown key '{path}'")
        elif found:
            lines.append(f"{where}: {path} = {value!r}: {message}")
        else:
            lines.append(f"{where}: {path}: {message}")
    return "\n".join(lines)
