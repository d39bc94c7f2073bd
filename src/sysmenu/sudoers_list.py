"""Reading ``sudo -ll``: would sudo run a command it allows without asking for a password?

``sudo -n -l COMMAND`` says whether sudoers allows a command, not whether it asks for a
password first (a rule without NOPASSWD allows it too). The long listing names each entry's
options (``!authenticate`` is NOPASSWD) and commands; the last entry matching the command
decides, as in sudo itself. Matching here is exact (path, or path and arguments, or ``ALL``):
an entry with wildcards leaves the answer open (None) rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SPECIAL = set("\\,:=*?[]!\"'()#")


@dataclass
class _Entry:
    runas: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def _entries(listing: str) -> tuple[list[_Entry], bool]:
    """The entries of a long listing, and whether the user's defaults say !authenticate."""
    entries: list[_Entry] = []
    default_free = False
    key = ""
    for raw in listing.splitlines():
        line = raw.strip()
        if raw.startswith("Matching Defaults entries"):
            key = "defaults"
            continue
        if raw.startswith("Sudoers entry"):
            entries.append(_Entry())
            key = ""
            continue
        if key == "defaults" and line:
            default_free = default_free or "!authenticate" in [p.strip() for p in line.split(",")]
            continue
        if not entries:
            continue
        name, colon, value = line.partition(":")
        if colon and name in ("RunAsUsers", "Options", "Commands"):
            key = name
            line = value.strip()
            if not line:
                continue
        if key == "RunAsUsers":
            entries[-1].runas += [u.strip() for u in line.split(",")]
        elif key == "Options":
            entries[-1].options += [o.strip() for o in line.split(",")]
        elif key == "Commands" and line:
            entries[-1].commands.append(line)
    return entries, default_free


def _escape(word: str) -> str:
    return "".join(f"\\{c}" if c in _SPECIAL else c for c in word)


def nopasswd(listing: str, runas: str, path: str, args: tuple[str, ...]) -> bool | None:
    """True: the last entry allowing `path args` as `runas` needs no password; False: it
    does; None: no entry matched exactly (wildcards, tags this reader does not know)."""
    entries, default_free = _entries(listing)
    exact = f"{path} {' '.join(_escape(a) for a in args)}" if args else f'{path} ""'
    decision: bool | None = None
    for entry in entries:
        runs_as = entry.runas or ["root"]
        if runas not in runs_as and "ALL" not in runs_as:
            continue
        for command in entry.commands:
            tagged_free = None
            if command.startswith(("NOPASSWD: ", "PASSWD: ")):
                tag, _, command = command.partition(": ")
                tagged_free = tag == "NOPASSWD"
            if command in ("ALL", path, exact):
                if tagged_free is not None:
                    decision = tagged_free
                elif "!authenticate" in entry.options:
                    decision = True
                elif "authenticate" in entry.options:
                    decision = False
                else:
                    decision = default_free
    return decision
