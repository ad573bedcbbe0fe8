"""The SEFT reviser template: rendering, round trip, and parsing well-formed, malformed and empty outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.records import Message
from harness.errors import HarnessError
from harness.seft.template import (
    ParsedRevision,
    conversation_text,
    load_template,
    parse_template,
)

TEMPLATE = load_template("reviser-v1.txt")
PROMPT = (Message("user", "Name a prime number."),)


def test_shipped_template_renders_prompt_and_response() -> None:
    text = TEMPLATE.render_input(PROMPT, "Nine is prime.")
    assert "Name a prime number." in text and "Nine is prime." in text
    assert text.index("Name a prime number.") < text.index("Nine is prime.")
    assert TEMPLATE.sha256 == __import__("hashlib").sha256(
        (Path(__file__).parents[1] / "harness/configs/seft/reviser-v1.txt").read_bytes()).hexdigest()


@pytest.mark.parametrize("decision, revision", [
    ("keep", "Two is prime."), ("minor", "Seven is prime."), ("major", "Line one.\n\nLine two {with braces}."),
])
def test_rendered_targets_parse_back(decision: str, revision: str) -> None:
    assert TEMPLATE.parse(TEMPLATE.render_target(decision, revision)) == ParsedRevision(decision, revision)


@pytest.mark.parametrize("output, expected", [
    # well-formed, with chatter around it, odd case and spacing
    ("<decision>minor</decision>\n<revision>\nSeven is prime.\n</revision>", ParsedRevision("minor", "Seven is prime.")),
    ("Sure! <decision> MAJOR </decision><revision>Two.</revision> Done.", ParsedRevision("major", "Two.")),
    ("<decision>minor</decision>\n<revision>\n</revision>", ParsedRevision("minor", "")),
    # keep needs no revision block: the original stands
    ("<decision>keep</decision>", ParsedRevision("keep", None)),
    ("<decision>keep</decision>\n<revision>\nNine is pr", ParsedRevision("keep", None)),
    # malformed
    ("<decision>major</decision>\n<revision>\nTwo is prime and", ParsedRevision("major", None, "no_revision")),
    ("<decision>minor</decision>", ParsedRevision("minor", None, "no_revision")),
    ("<decision>maybe</decision>\n<revision>\nx\n</revision>", ParsedRevision(None, None, "unknown_decision")),
    ("<decision></decision><revision>x</revision>", ParsedRevision(None, None, "unknown_decision")),
    ("Seven is prime.", ParsedRevision(None, None, "no_decision")),
    ("<decision>keep", ParsedRevision(None, None, "no_decision")),
    # empty
    ("", ParsedRevision(None, None, "empty")),
    (" \n\t", ParsedRevision(None, None, "empty")),
])
def test_parse_reviser_output(output: str, expected: ParsedRevision) -> None:
    assert TEMPLATE.parse(output) == expected


def test_parser_follows_the_template_file() -> None:
    template = parse_template("== input ==\nQ: {prompt}\nA: {response}\n== target ==\nDECISION: {decision} ||| {revision}", "t.txt")
    assert template.parse("DECISION: minor ||| better text") == ParsedRevision("minor", "better text")
    assert template.parse("DECISION: keep") == ParsedRevision(None, None, "no_decision")
    assert template.parse("DECISION: keep |||") == ParsedRevision("keep", "")


def test_multi_turn_prompts_are_shown_with_roles() -> None:
    chat = (Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "A prime?"))
    assert conversation_text(chat) == "User: Hi\n\nAssistant: Hello\n\nUser: A prime?"
    assert conversation_text(PROMPT) == "Name a prime number."


@pytest.mark.parametrize("text, message", [
    ("== input ==\n{prompt} {response}\n", "exactly one"),
    ("== input ==\n{prompt}\n== target ==\n{decision}</d>{revision}", r"\['prompt', 'response'\]"),
    ("== input ==\n{prompt} {response} {other}\n== target ==\n{decision}</d>{revision}", "found"),
    ("== input ==\n{prompt} {response}\n== target ==\n{revision}</d>{decision}", "once, then"),
    ("== input ==\n{prompt} {response}\n== target ==\n{decision} {revision}", "literal text"),
    ("== input ==\n{prompt} {response} {\n== target ==\n{decision}</d>{revision}", "literal braces"),
    ("notes\n== input ==\n{prompt} {response}\n== target ==\n{decision}</d>{revision}", "comment lines"),
])
def test_bad_templates_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message) as info:
        parse_template(text, "bad.txt")
    assert "\n" not in str(info.value) and "bad.txt" in str(info.value)


def test_unknown_template_lists_the_shipped_ones() -> None:
    with pytest.raises(HarnessError, match="reviser-v1.txt"):
        load_template("reviser-v0.txt")


def test_keep_stop_is_where_a_keep_target_stops_being_new_and_still_parses_as_keep() -> None:
    stop = TEMPLATE.keep_stop()
    assert stop == "<decision>keep</decision>"
    assert TEMPLATE.render_target("keep", "Two is prime.").startswith(stop)
    assert not TEMPLATE.render_target("major", "Two is prime.").startswith(stop)
    assert TEMPLATE.parse(stop) == ParsedRevision("keep", None)  # the reviser's output cut at the stop: the original stands
