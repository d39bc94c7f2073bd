"""What a configured command line asks of the machine: programs, sudo, polkit.

A command line runs with ``/bin/sh -c``; this module reads it as far as a shell's simple
commands go (``a; b && c | d``, ``if``/``for``, redirections) and, for each, names the program,
its arguments, whether it goes through ``sudo`` (as whom) and which polkit actions it needs
when it asks systemd or logind (``systemctl poweroff``, ``systemctl restart UNIT``, ``reboot``).
`sysmenu doctor` checks these against the machine; `sysmenu service install` writes the
sudoers and polkit rules that allow exactly them. Words built at run time (``$X``, backquotes)
cannot be read ahead: they are reported as unchecked, never guessed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

_SEPARATORS = {";", "&", "&&", "||", "|", "(", ")", ";;", "|&"}
_REDIRECTIONS = {">", ">>", "<", "<<", ">&", "<&", "&>", "&>>", ">|", "<>"}
# Words that open or continue a compound command: the next word is a command.
_PREFIX_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"}
# Segments that are not commands at all (loop headers, ends of blocks).
_NOT_COMMANDS = {"for", "case", "select", "in", "done", "fi", "esac", "}", "function"}
# dash's builtins: they exist wherever /bin/sh does.
BUILTINS = frozenset(
    {
        ":",
        ".",
        "[",
        "alias",
        "bg",
        "break",
        "cd",
        "command",
        "continue",
        "echo",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fg",
        "getopts",
        "hash",
        "jobs",
        "kill",
        "local",
        "printf",
        "pwd",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
    }
)
# Programs that run the next word as the command (after their own options).
_WRAPPERS = {"exec", "command", "nohup", "setsid", "env", "nice"}
_SUDO_ARG_OPTIONS = set("CDghprtTuU")
_SUDO_SHELL_OPTIONS = set("ise")  # -i/-s run a shell, -e edits: no exact rule can allow them

LOGIN1 = "org.freedesktop.login1."
MANAGE_UNITS = "org.freedesktop.systemd1.manage-units"
_POWER = {"poweroff": "power-off", "reboot": "reboot", "halt": "halt", "suspend": "suspend"}
_UNIT_VERBS = {
    "start",
    "stop",
    "restart",
    "reload",
    "try-restart",
    "reload-or-restart",
    "try-reload-or-restart",
}


@dataclass(frozen=True)
class Sudo:
    """How a step goes through sudo."""

    user: str | None = None  # -u: the target user (root when None)
    group: str | None = None  # -g
    non_interactive: bool = False  # -n: fail instead of asking for a password
    shell: bool = False  # -i, -s or -e: not a single command sudoers can name exactly

    def runas(self) -> str:
        """The sudoers Runas list for this use: ``(root)``, ``(octoprint)``, ``(:adm)``."""
        if self.group and not self.user:
            return f"(:{self.group})"
        return f"({self.user or 'root'}{':' + self.group if self.group else ''})"


@dataclass(frozen=True)
class PolkitAction:
    """One polkit authorisation a step needs from systemd or logind."""

    action_id: str
    details: tuple[tuple[str, str], ...] = ()
    text: str = ""  # what it does, for messages: "power off", "restart octoprint.service"


@dataclass(frozen=True)
class Step:
    """One simple command of a command line."""

    program: str
    args: tuple[str, ...] = ()
    sudo: Sudo | None = None

    @property
    def is_builtin(self) -> bool:
        return self.sudo is None and self.program in BUILTINS

    def shown(self) -> str:
        return shlex.join([self.program, *self.args])

    def polkit(self) -> list[PolkitAction]:
        """What systemd or logind will ask polkit before doing this step's work (as non-root)."""
        return polkit_actions(self.program, self.args)


@dataclass
class Analysis:
    steps: list[Step] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # why parts could not be read ahead


def _words(line: str) -> list[str] | None:
    lexer = shlex.shlex(line.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""  # `#` inside words is common in command lines; a comment is not
    try:
        return list(lexer)
    except ValueError:
        return None


def _segments(words: list[str]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in _SEPARATORS:
            segments.append([])
        elif word in _REDIRECTIONS:
            if segments[-1] and segments[-1][-1].isdigit():
                segments[-1].pop()  # the `2` of `2>/dev/null`
            skip_next = True
        else:
            segments[-1].append(word)
    return [s for s in segments if s]


def _unwrap(words: list[str]) -> list[str]:
    """The command of a segment: keywords, assignments and wrappers taken off."""
    while words:
        first = words[0]
        if first in _PREFIX_KEYWORDS or ("=" in first and not first.startswith("=") and first[0] != "-"):
            words = words[1:]
        elif first in _WRAPPERS and len(words) > 1:
            words = words[1:]
            while words and (words[0].startswith("-") or "=" in words[0]):
                takes_value = first == "nice" and words[0] == "-n"
                words = words[2:] if takes_value else words[1:]
        else:
            break
    return words


def _sudo(words: list[str]) -> tuple[Sudo, list[str]]:
    """Parse sudo's options; return how it is used and the command after them."""
    user = group = None
    non_interactive = shell = False
    rest = words
    while rest and rest[0].startswith("-") and rest[0] != "-":
        option, rest = rest[0], rest[1:]
        if option == "--":
            break
        if option.startswith("--"):
            name, _, value = option[2:].partition("=")
            if name == "non-interactive":
                non_interactive = True
            elif name in ("user", "group") and not value and rest:
                value, rest = rest[0], rest[1:]
            if name == "user":
                user = value
            elif name == "group":
                group = value
            elif name in ("shell", "login", "edit"):
                shell = True
            continue
        for index, char in enumerate(option[1:], 1):
            if char in _SUDO_ARG_OPTIONS:
                value = option[index + 1 :]
                if not value and rest:
                    value, rest = rest[0], rest[1:]
                user = value if char == "u" else user
                group = value if char == "g" else group
                break
            non_interactive = non_interactive or char == "n"
            shell = shell or char in _SUDO_SHELL_OPTIONS
    while rest and "=" in rest[0] and not rest[0].startswith("-"):
        rest = rest[1:]  # sudo VAR=value command
    return Sudo(user, group, non_interactive, shell), rest


def analyse(line: str) -> Analysis:
    """The steps of command line `line`, and what could not be read ahead."""
    result = Analysis()
    words = _words(line)
    if words is None:
        result.unchecked.append("the command line has unbalanced quotes")
        return result
    for segment in _segments(words):
        if segment[0] in _NOT_COMMANDS:
            continue
        command = _unwrap(segment)
        if not command:
            continue
        if any(c in command[0] for c in "$`*?"):
            result.unchecked.append(f"{command[0]!r} is only known when the command runs")
            continue
        sudo = None
        if command[0].rsplit("/", 1)[-1] == "sudo":
            sudo, command = _sudo(command[1:])
            if not command and not sudo.shell:
                continue
            if sudo.shell:
                result.unchecked.append(
                    "sudo -i, -s or -e runs a shell or an editor: no rule names it exactly"
                )
                result.steps.append(Step(command[0] if command else "sudo", tuple(command[1:]), sudo))
                continue
            if any(c in command[0] for c in "$`"):
                result.unchecked.append(f"{command[0]!r} is only known when the command runs")
                continue
        result.steps.append(Step(command[0], tuple(command[1:]), sudo))
    return result


def _unit_name(name: str) -> str:
    return name if "." in name.rsplit("/", 1)[-1] else f"{name}.service"


def polkit_actions(program: str, args: tuple[str, ...]) -> list[PolkitAction]:
    """The polkit actions systemctl (or its poweroff/reboot/halt/shutdown links) asks for."""
    name = program.rsplit("/", 1)[-1]
    words = [a for a in args if not a.startswith("-")]
    if name == "shutdown":
        if "-c" in args or "--show" in args:
            return []
        name = "reboot" if "-r" in args or "--reboot" in args else "poweroff"
        words = []
    if name in _POWER and name != "suspend":
        verb = _POWER[name]
        return [PolkitAction(LOGIN1 + verb, text=verb.replace("-", " "))]
    if name != "systemctl" or not words:
        return []
    verb, units = words[0], words[1:]
    if verb in _POWER:
        return [PolkitAction(LOGIN1 + _POWER[verb], text=_POWER[verb].replace("-", " "))]
    if verb in _UNIT_VERBS:
        return [
            PolkitAction(MANAGE_UNITS, (("unit", _unit_name(u)), ("verb", verb)), f"{verb} {_unit_name(u)}")
            for u in units
        ]
    return []
