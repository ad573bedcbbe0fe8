"""IFEval's pieces: packaged data, subset, labels, the outside-responses reader, offline checkers."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import pytest

from harness.benchmarks.ifeval.checkers import NLTK_DATA_DIR, lm_eval_ifeval
from harness.benchmarks.ifeval.prompts import DATA_FILE, IFEvalPrompt, load_prompts, select_subset, subset_label
from harness.benchmarks.ifeval.protocol import MAX_NEW_TOKENS, cap_label
from harness.benchmarks.ifeval.responses import read_responses
from harness.benchmarks.ifeval.scoring import (INST_LOOSE, INST_STRICT, PROMPT_LOOSE, PROMPT_STRICT, PromptVerdict, aggregate,
                                               score_responses)
from harness.errors import HarnessError

FIXTURE = Path(__file__).parent / "fixtures" / "ifeval" / "gpt4_responses.jsonl"


@pytest.fixture(scope="module")
def prompts(packaged_data):
    return load_prompts(packaged_data)


@pytest.fixture(scope="module")
def fixture_lines():
    return FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)


def test_packaged_files_are_the_upstream_bytes(packaged_data):
    # sha256 recorded in harness/resources/data/README.md, tests/fixtures/ifeval/README.md and
    # harness/resources/nltk_data/README.md.
    expected = {
        packaged_data / DATA_FILE: "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49",
        FIXTURE: "0cff1d1469b774e80296bee20ca696894df35f3c6d6539f2c886d67c07599dcb",
        NLTK_DATA_DIR / "tokenizers/punkt_tab/english/ortho_context.tab":
            "4bbcca25ed3d3f06c02402abf8419b9f033b8adc06e7b482eca4e45f81a5dc4c",
    }
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in expected} == expected


def test_prompts_load_in_file_order(prompts):
    assert len(prompts) == 541
    assert sum(len(p.instruction_ids) for p in prompts) == 834
    assert len({i for p in prompts for i in p.instruction_ids}) == 25
    first = prompts[0]
    assert first.key == 1000 and first.instruction_ids[0] == "punctuation:no_comma"
    assert first.kwargs[1] == {"num_highlights": 3}


def test_malformed_prompt_file_is_one_line(tmp_path):
    (tmp_path / "ifeval").mkdir()
    row = {"key": 1, "prompt": "p", "instruction_id_list": ["a:b"], "kwargs": []}
    (tmp_path / DATA_FILE).write_text(json.dumps(row) + "\n")
    with pytest.raises(HarnessError, match=r"line 1: field 'kwargs' must hold one object per instruction") as err:
        load_prompts(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(HarnessError, match="IFEval prompts not found"):
        load_prompts(tmp_path / "nowhere")


def test_subset_is_seeded_nested_and_labelled(prompts):
    twenty = select_subset(prompts, 20)
    assert twenty == select_subset(prompts, 20)
    assert len(twenty) == 20 and len({p.key for p in twenty}) == 20
    positions = [prompts.index(p) for p in twenty]
    assert positions == sorted(positions)
    assert {p.key for p in twenty} <= {p.key for p in select_subset(prompts, 50)}
    assert select_subset(prompts, 20, seed=1) != twenty
    assert select_subset(prompts, None) == select_subset(prompts, 541) == prompts
    with pytest.raises(HarnessError, match="at least 1"):
        select_subset(prompts, 0)
    assert subset_label(20) == "ifeval: subset 20/541 (not comparable to published scores)"
    assert subset_label(541) is None


def test_cap_label():
    assert MAX_NEW_TOKENS == 1280
    assert cap_label(1280) is None
    assert cap_label(256) == "ifeval: answers capped at 256 new tokens (protocol: 1280)"
    assert cap_label(2048) == "ifeval: answers allowed 2048 new tokens (protocol: 1280)"


def test_reader_returns_responses_in_prompt_order(tmp_path, prompts, fixture_lines):
    shuffled = list(fixture_lines)
    random.Random(0).shuffle(shuffled)
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(shuffled), encoding="utf-8")
    expected = [json.loads(line)["response"] for line in fixture_lines]
    assert read_responses(path, prompts) == expected
    # Key 2785 is answered under its earlier wording (line 340) and still found.
    assert json.loads(fixture_lines[339])["prompt"] != prompts[339].prompt and prompts[339].key == 2785


def test_reader_with_limit_needs_only_the_subset(tmp_path, prompts, fixture_lines):
    subset = select_subset(prompts, 10)
    by_prompt = {json.loads(line)["prompt"]: line for line in fixture_lines}
    path = tmp_path / "subset.jsonl"
    path.write_text("".join(by_prompt[p.prompt] for p in subset), encoding="utf-8")
    assert read_responses(path, prompts, limit=10) == [json.loads(by_prompt[p.prompt])["response"] for p in subset]
    with pytest.raises(HarnessError, match=r"531 prompt\(s\) without a response"):
        read_responses(path, prompts)


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[1:], r"1 prompt\(s\) without a response \(key 1000\)"),
    (lambda lines: lines + [json.dumps({"prompt": "Not an IFEval prompt", "response": "x"}) + "\n"],
     r"1 line\(s\) whose prompt is not an IFEval prompt \('Not an IFEval prompt'\)"),
    (lambda lines: lines + lines[:2], r"2 prompt\(s\) answered more than once \(key 1000, key 1001\)"),
    (lambda lines: lines + [json.dumps({"prompt": json.loads(lines[339])["prompt"].replace("one placeholder", "3 placeholders"),
                                        "response": "x"}) + "\n"],  # key 2785 under both wordings
     r"answered more than once \(key 2785\)"),
    (lambda lines: lines[:5] + ["{not json\n"] + lines[5:], r"line 6: invalid JSON"),
    (lambda lines: lines[:5] + [json.dumps({"prompt": "p"}) + "\n"] + lines[5:], r"line 6: missing field 'response'"),
])
def test_reader_errors_are_one_line(tmp_path, prompts, fixture_lines, edit, message):
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(edit(list(fixture_lines))), encoding="utf-8")
    with pytest.raises(HarnessError, match=message) as err:
        read_responses(path, prompts)
    assert "\n" not in str(err.value)


def test_missing_responses_file(tmp_path, prompts):
    with pytest.raises(HarnessError, match="IFEval responses file not found"):
        read_responses(tmp_path / "none.jsonl", prompts)


def test_verdicts_do_not_depend_on_the_random_state_or_the_other_prompts(prompts):
    # Keys 1122 and 1129 ask for a '#' / '!' frequency, for which lm_eval's checker draws a random letter.
    by_key = {p.key: p for p in prompts}
    chosen = [by_key[1122], by_key[1129], by_key[1000]]
    responses = ["#a #b #c #d no capitals here", "!!!!!! " * 3, "text"]
    lm_eval_ifeval()  # importing lm_eval may draw from random itself
    random.seed(123)
    expected_draw = random.random()
    random.seed(123)
    first = score_responses(chosen, responses)
    assert random.random() == expected_draw  # the caller's random state is restored
    second = score_responses(chosen[::-1], responses[::-1])[::-1]
    assert first == second
    with pytest.raises(HarnessError, match="3 prompts but 2 responses"):
        score_responses(chosen, responses[:2])
    with pytest.raises(HarnessError, match="instructions lm_eval does not check: nope:nothing"):
        score_responses([IFEvalPrompt(1, "p", ("nope:nothing",), ({},))], ["r"])


def test_instruction_level_interval_treats_prompts_as_the_units():
    def verdict(key, followed):
        return PromptVerdict(key, tuple(f"g:t{i}" for i in range(len(followed))), tuple(followed), tuple(followed))

    # 3 + 1 + 2 instructions, 2 + 0 + 2 followed: p = 4/6; residuals f - p*g = 0, -2/3, 2/3.
    metrics = aggregate([verdict(1, (True, True, False)), verdict(2, (False,)), verdict(3, (True, True))])
    assert metrics.inst_level_strict_acc == metrics.inst_level_loose_acc == pytest.approx(4 / 6)
    stderr = (3 / 2 * (4 / 9 + 4 / 9)) ** 0.5 / 6
    for name in (INST_STRICT, INST_LOOSE):
        assert metrics.intervals[name].stderr == pytest.approx(stderr, rel=1e-12)
        assert 4 / 6 - metrics.intervals[name].low == pytest.approx(1.959964 * stderr, rel=1e-5)
        assert metrics.intervals[name].high == 1.0  # clipped
    # One instruction per prompt: instruction level and prompt level are the same mean, with the same interval.
    single = aggregate([verdict(k, (f,)) for k, f in enumerate((True, False, True, True))])
    assert astuple(single.intervals[INST_STRICT]) == pytest.approx(astuple(single.intervals[PROMPT_STRICT]), rel=1e-12)
    assert single.intervals[PROMPT_LOOSE].stderr == pytest.approx((0.75 * 0.25 * 4 / 3) ** 0.5 / 2, rel=1e-12)
    assert aggregate([verdict(1, (True,))]).intervals == {}  # one prompt: no interval


OFFLINE_SCRIPT = r"""
import json, socket, sys

def no_network(*args, **kwargs):
    raise OSError("network unreachable (test)")

socket.socket.connect = socket.socket.connect_ex = socket.create_connection = socket.getaddrinfo = no_network

import nltk
import nltk.downloader

def no_download(*args, **kwargs):
    raise AssertionError(f"nltk download attempted: {args}")

nltk.download = nltk.downloader.download = nltk.downloader.Downloader.download = no_download

from harness.benchmarks.ifeval.checkers import PUNKT_TAB_ENGLISH
from harness.benchmarks.ifeval.prompts import IFEvalPrompt
from harness.benchmarks.ifeval.scoring import (INST_LOOSE, INST_STRICT, PROMPT_LOOSE, PROMPT_STRICT, PromptVerdict, aggregate,
                                               score_responses)

def prompt(instruction, kwargs):
    return IFEvalPrompt(1, "p", (instruction,), (kwargs,))

sentences = prompt("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3})
capitals = prompt("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "at least"})
german = prompt("language:response_language", {"language": "de"})
cases = [
    (sentences, "Dr. Smith arrived at noon. He sat down."),  # 2 sentences: Punkt knows "Dr."
    (sentences, "One is here. Two is here. Three is here."),
    (capitals, "THIS IS VERY LOUD indeed"),  # word_tokenize (punkt_tab)
    (capitals, "quiet words only"),
    (german, "Der Hund schläft heute den ganzen Tag im Garten unter dem großen Baum."),
    (german, "The dog sleeps in the garden under the big tree all day long."),
]
verdicts = score_responses([p for p, _ in cases], [r for _, r in cases])
print(json.dumps({"strict": [v.strict[0] for v in verdicts], "punkt_tab": str(nltk.data.find(PUNKT_TAB_ENGLISH)),
                  "instructions_util": "lm_eval.tasks.ifeval.instructions_util" in sys.modules}))
"""


def test_checkers_run_offline_from_the_packaged_nltk_data(repo_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NLTK_DATA"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(repo_root))
    done = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["strict"] == [True, False, True, False, True, False]
    assert Path(out["punkt_tab"]).resolve().is_relative_to(NLTK_DATA_DIR.resolve())
    assert out["instructions_util"]
