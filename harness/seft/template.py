"""The reviser's versioned template: render its input and target, parse its output.

A template file (harness/configs/seft/reviser-v1.txt) has an ``== input ==`` section with
{prompt} and {response} and an ``== target ==`` section with {decision} and {revision}.
The parser is derived from the target section, so the file is the one place the output
format is written down. A malformed output is a ParsedRevision with a failure reason,
never an exception.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from harness.config_files import find_config, list_configs
from harness.data.records import Message
from harness.errors import HarnessError
from harness.seft.decisions import DECISIONS

TEMPLATE_FOLDER = "seft"  # in the configuration folders (harness.config_files)
_SECTION = re.compile(r"^== (input|target) ==[ \t]*$", re.MULTILINE)
PARSE_FAILURES = ("empty", "no_decision", "unknown_decision", "no_revision")


@dataclass(frozen=True)
class ParsedRevision:
    """The reviser's output read back: decision and revised text, or why it failed.

    ``failure`` is None on success and one of PARSE_FAILURES otherwise; ``decision`` is
    also set for "no_revision" (read, but its revision is missing or unclosed). ``text``
    is None for a ``keep`` written without a revision block (the original stands).
    """

    decision: str | None
    text: str | None
    failure: str | None = None


@dataclass(frozen=True)
class ReviserTemplate:
    """One template file's two sections and its identity (name, sha256 of the file)."""

    name: str
    input: str
    target: str
    sha256: str

    def render_input(self, prompt: Sequence[Message], response: str) -> str:
        """Return the reviser's user message for ``response`` to the conversation ``prompt``."""
        return self.input.format(prompt=conversation_text(prompt), response=response)

    def render_target(self, decision: str, revision: str) -> str:
        """Return what the reviser should write: the decision tag and the revised text."""
        return self.target.format(decision=decision, revision=revision)

    def keep_stop(self) -> str:
        """Return the text that ends a ``keep`` decision as the target section writes it ("<decision>keep</decision>").

        After it the reviser only copies the original, which the target for ``keep`` is anyway:
        generation may stop there, and the output still parses as ``keep``.
        """
        before, between, _ = self._literals
        return f"{before.strip()}keep{between.split()[0]}"

    def parse(self, output: str) -> ParsedRevision:
        """Return the decision and revision in ``output``, or a ParsedRevision naming the failure."""
        if not output.strip():
            return ParsedRevision(None, None, "empty")
        full = self._full_pattern.search(output)
        match = full or self._decision_pattern.search(output)
        if match is None:
            return ParsedRevision(None, None, "no_decision")
        decision = match["decision"].strip().lower()
        if decision not in DECISIONS:
            return ParsedRevision(None, None, "unknown_decision")
        if full is not None:
            return ParsedRevision(decision, full["revision"].strip())
        if decision == "keep":
            return ParsedRevision(decision, None)
        return ParsedRevision(decision, None, "no_revision")

    @cached_property
    def _literals(self) -> tuple[str, str, str]:
        (before, _), (between, _), (after, _) = _fields(self.target)
        return before, between, after

    @cached_property
    def _full_pattern(self) -> re.Pattern:
        before, between, after = self._literals
        revision = r"(?P<revision>.*?)" + _flexible(after) if after.strip() else r"(?P<revision>.*)"
        return re.compile(_flexible(before) + r"\s*(?P<decision>[^\s<>]*)\s*" + _flexible(between) + revision, re.DOTALL)

    @cached_property
    def _decision_pattern(self) -> re.Pattern:
        before, between, _ = self._literals
        closing = between.split()[0]
        return re.compile(_flexible(before) + r"\s*(?P<decision>[^\s<>]*)\s*" + re.escape(closing))


def conversation_text(messages: Sequence[Message]) -> str:
    """Return the conversation as the reviser reads it: a lone user turn as is, else "Role: text" blocks."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in messages)


def load_template(name: str) -> ReviserTemplate:
    """Return the template ``name``: a path to one, or a file of the configuration folders' seft/ (the packaged
    reviser-v1.txt, or one in $HARNESS_CONFIG_DIR/seft)."""
    path = Path(name).expanduser()
    if not path.is_file():
        found = find_config(f"{TEMPLATE_FOLDER}/{name}")
        if found is None:
            known = ", ".join(f"{n}.txt" for n in list_configs(TEMPLATE_FOLDER, ".txt")) or "none"
            raise HarnessError(f"methods.seft.template: no template {name!r} (templates: {known}; or give a path)")
        path = found.path
    return parse_template(path.read_text(), path.name)


def parse_template(text: str, name: str) -> ReviserTemplate:
    """Return the ReviserTemplate in ``text``; HarnessError naming ``name`` if a section or placeholder is wrong."""
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], (body.strip("\n") for body in parts[2::2])))
    if len(parts) != 5 or set(sections) != {"input", "target"}:
        raise HarnessError(f"reviser template {name}: needs exactly one '== input ==' and one '== target ==' section")
    if any(line.strip() and not line.startswith("#") for line in parts[0].splitlines()):
        raise HarnessError(f"reviser template {name}: only '#' comment lines may precede the first section")
    _check_fields(name, "input", sections["input"], {"prompt", "response"})
    fields = _check_fields(name, "target", sections["target"], {"decision", "revision"})
    if [field for _, field in fields if field] != ["decision", "revision"]:
        raise HarnessError(f"reviser template {name}: target must have {{decision}} once, then {{revision}} once")
    if not fields[1][0].strip():
        raise HarnessError(f"reviser template {name}: target needs literal text (a closing tag) between {{decision}} and {{revision}}")
    return ReviserTemplate(name, sections["input"], sections["target"], hashlib.sha256(text.encode()).hexdigest())


def _fields(section: str) -> list[tuple[str, str | None]]:
    """Return (literal text, following field name) pieces; the last piece's field is None."""
    pieces = [(literal, field) for literal, field, _, _ in string.Formatter().parse(section)]
    if not pieces or pieces[-1][1] is not None:
        pieces.append(("", None))
    return pieces


def _check_fields(name: str, section: str, body: str, expected: set[str]) -> list[tuple[str, str | None]]:
    try:
        fields = _fields(body)
    except ValueError as exc:
        raise HarnessError(f"reviser template {name}: {section} section: {exc} (write literal braces as {{{{ }}}})") from None
    found = {field for _, field in fields if field is not None}
    if found != expected:
        raise HarnessError(f"reviser template {name}: {section} section must use exactly {sorted(expected)}, found {sorted(found)}")
    return fields


def _flexible(literal: str) -> str:
    """Return a regex matching ``literal`` with any whitespace run matching any (or no) whitespace."""
    return "".join(r"\s*" if part.isspace() else re.escape(part) for part in re.split(r"(\s+)", literal) if part)
