"""The commands a reader of README.md would copy: found in its code blocks, with the test's
settings from HTML comments placed before a block.

A command is a ``parlai ...`` or ``python -m ...`` line (also ``.venv/bin/parlai``,
``python3``, ``VAR=value`` prefixes, ``\\`` continuations, ``&&``/``;``/``|`` chains) in a
fenced block whose language is empty, ``bash``, ``sh``, ``shell`` or ``console``. Anything
else in those blocks (``bash scripts/...``, ``pip ...``) is listed as not run.

Markers (invisible when rendered) apply to the next code block; several may precede it::

    <!-- readme-test: skip (why) -->                     the whole block
    <!-- readme-test: skip "TEXT" (why) -->              its commands containing TEXT
    <!-- readme-test: args -ne 5 -->                     extra arguments for its commands
    <!-- readme-test: args "TEXT" --per-group 1 -->      ... for those containing TEXT
    <!-- readme-test: replace "OLD" "NEW" -->            OLD -> NEW in its commands
    <!-- readme-test: timeout 600 -->                    seconds per command (default 300)

A marker the parser does not understand, or one with no block after it, is an error naming
its line, so a typo cannot silently turn a check off.
"""
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
MARKER = re.compile(r"<!--\s*readme-test:(.*?)-->", re.S)
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
SEPARATORS = {"&&", "||", ";", "|", "&"}
REDIRECTIONS = {">", ">>", "<", ">&", "&>", "<&"}
DEFAULT_TIMEOUT = 300


class ReadmeMarkerError(ValueError):
    """A readme-test marker that cannot be applied (the message names the line)."""


@dataclass
class Markers:
    skip_block: Optional[str] = None
    skips: List[Tuple[str, str]] = field(default_factory=list)  # (text, reason)
    args: List[Tuple[Optional[str], List[str]]] = field(default_factory=list)
    replaces: List[Tuple[str, str]] = field(default_factory=list)
    timeout: int = DEFAULT_TIMEOUT


@dataclass
class Command:
    """One command of a README code block, as the test will run it."""

    line: int  # 1-based line of README.md where the command starts
    text: str  # as written (continuations joined)
    kind: str  # "parlai", "python -m" or "other"
    argv: List[str]  # after the block's replacements, before the test's limits
    env: Dict[str, str]
    extra_args: List[str]
    timeout: int
    skip: Optional[str] = None  # reason, when a marker skips it

    @property
    def subcommand(self) -> str:
        """``parlai``'s script (``train_model``) or the ``-m`` module and its first word."""
        if self.kind == "parlai":
            return self.argv[1] if len(self.argv) > 1 else ""
        if self.kind == "python -m":
            words = [a for a in self.argv[3:5] if not a.startswith("-")][:1]
            return " ".join([self.argv[2], *words])
        return ""

    @property
    def label(self) -> str:
        return f"README.md:{self.line} {self.text}"


def _parse_marker(body: str, line: int, markers: Markers):
    body = body.strip()
    directive, _, rest = body.partition(" ")
    rest = rest.strip()

    def selector(text):
        if text.startswith('"'):
            end = text.find('"', 1)
            if end < 0:
                raise ReadmeMarkerError(f"README.md:{line}: unclosed quote in {body!r}")
            return text[1:end], text[end + 1:].strip()
        return None, text

    if directive == "skip":
        text, reason = selector(rest)
        match = re.fullmatch(r"\((.+)\)", reason, re.S)
        if not match:
            raise ReadmeMarkerError(
                f"README.md:{line}: 'skip' needs a reason in parentheses: {body!r}"
            )
        if text is None:
            markers.skip_block = match.group(1).strip()
        else:
            markers.skips.append((text, match.group(1).strip()))
    elif directive == "args":
        text, words = selector(rest)
        args = shlex.split(words)
        if not args:
            raise ReadmeMarkerError(f"README.md:{line}: 'args' names no arguments: {body!r}")
        markers.args.append((text, args))
    elif directive == "replace":
        words = shlex.split(rest)
        if len(words) != 2:
            raise ReadmeMarkerError(
                f'README.md:{line}: \'replace\' takes "OLD" "NEW": {body!r}'
            )
        markers.replaces.append((words[0], words[1]))
    elif directive == "timeout":
        if not rest.isdigit() or int(rest) <= 0:
            raise ReadmeMarkerError(f"README.md:{line}: 'timeout' takes seconds: {body!r}")
        markers.timeout = int(rest)
    else:
        raise ReadmeMarkerError(
            f"README.md:{line}: unknown readme-test directive {directive!r} "
            "(skip, args, replace, timeout)"
        )


def _logical_lines(block_lines: List[Tuple[int, str]]):
    """(first line number, text) with ``\\`` continuations joined."""
    pending, start = "", None
    for number, text in block_lines:
        if start is None:
            start = number
        stripped = text.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        yield start, pending + stripped
        pending, start = "", None
    if start is not None:
        yield start, pending


def _segments(text: str):
    """Simple commands of one shell line, redirections dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segment: List[str] = []
    tokens = list(lexer)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in SEPARATORS:
            if segment:
                yield segment
            segment = []
        elif token in REDIRECTIONS:
            if segment and segment[-1].isdigit():
                segment.pop()  # the file descriptor of "2>&1", "2> log"
            i += 1  # and its target
        else:
            segment.append(token)
        i += 1
    if segment:
        yield segment


def _classify(words: List[str]):
    """(kind, env, argv) of one simple command."""
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words[0].partition("=")
        env[name] = value
        words = words[1:]
    if not words:
        return "other", env, words
    program = words[0].rsplit("/", 1)[-1]
    if program == "parlai":
        return "parlai", env, ["parlai", *words[1:]]
    if re.fullmatch(r"python(3(\.\d+)?)?", program) and len(words) > 2 and words[1] == "-m":
        return "python -m", env, ["python", *words[1:]]
    return "other", env, words


def parse_readme(text: str) -> List[Command]:
    """Every command of ``text``'s shell code blocks, with its block's markers applied."""
    lines = text.splitlines()
    commands: List[Command] = []
    markers, marker_lines = Markers(), []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if not fence:
            for match in MARKER.finditer(line):
                _parse_marker(match.group(1), i + 1, markers)
                marker_lines.append(i + 1)
            i += 1
            continue
        indent, ticks, language = fence.groups()
        body: List[Tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(ticks[0] * len(ticks)):
            body.append((i + 1, lines[i][len(indent):] if lines[i].startswith(indent) else lines[i]))
            i += 1
        i += 1  # the closing fence
        if language.lower() in SHELL_LANGUAGES:
            commands.extend(_block_commands(body, markers))
        markers, marker_lines = Markers(), []
    if marker_lines:
        raise ReadmeMarkerError(
            f"README.md:{marker_lines[0]}: readme-test marker with no code block after it"
        )
    return commands


def _block_commands(body, markers: Markers) -> List[Command]:
    found = []
    for number, text in _logical_lines(body):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        for words in _segments(text):
            kind, env, argv = _classify(words)
            if kind == "other":
                found.append(Command(number, text.strip(), kind, argv, env, [], markers.timeout))
                continue
            joined = " ".join(argv)
            for old, new in markers.replaces:
                if old in joined:
                    argv = [a.replace(old, new) for a in argv]
            joined = " ".join(argv)
            extra = [a for sel, args in markers.args if sel is None or sel in joined for a in args]
            skip = markers.skip_block
            for sel, reason in markers.skips:
                if skip is None and sel in " ".join(words):
                    skip = reason
            shown = " ".join(shlex.quote(w) for w in words)
            found.append(Command(number, shown, kind, argv, env, extra, markers.timeout, skip))
    return found
