"""What the generate stages store and how they are labelled: answers stripped before storing and
judging, as alpaca_eval's decoders and FastChat strip them (both benchmarks, one tiny-model run, whose
first turns the first-turns stage generates together), and AlpacaEval answers capped below the
protocol's length labelled."""

from __future__ import annotations

import json

from harness.benchmarks.alpaca_eval.stages import labels
from harness.experiment import load_experiment
from harness.io import read_json


def test_stored_answers_are_the_generations_stripped(experiment_yaml, harness_cli, tmp_path):
    results = tmp_path / "results"
    proc = harness_cli("run", "--config", experiment_yaml(), "--run-id", "strip", "--results", results)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    raw = [json.loads(line)["text"] for path in (results / "_cache" / "generations").glob("*.jsonl")
           for line in path.read_text().splitlines()]
    assert any(text != text.strip() for text in raw)  # the tiny model's raw answers do carry outer whitespace
    run = results / "strip"
    outputs = [o["output"] for o in read_json(run / "generate" / "alpaca_eval" / "model_outputs.json")]
    turns = [turn for line in (run / "generate" / "mt_bench" / "answers.jsonl").read_text().splitlines()
             for turn in json.loads(line)["choices"][0]["turns"]]
    assert len(outputs) == 6 and len(turns) == 16
    assert sorted(outputs + turns) == sorted(text.strip() for text in raw)
    # Both benchmarks' first turns were generated together before either generate stage, which found them cached.
    summary = {name: read_json(run / "generate" / name / "manifest.json")["summary"] for name in ("first-turns", "alpaca_eval", "mt_bench")}
    assert (summary["first-turns"]["benchmarks"], summary["first-turns"]["generated"]) == (["alpaca_eval", "mt_bench"], 6 + 8)
    assert (summary["alpaca_eval"]["generated"], summary["mt_bench"]["mt_bench-turn1"]["generated"]) == (0, 0)
    assert summary["mt_bench"]["mt_bench-turn2"]["generated"] == 8
    shown = json.loads(harness_cli("show", "strip", "--json", "--results", results).stdout)
    assert "alpaca_eval: answers capped at 8 new tokens (protocol: 2048)" in shown["labels"]


def test_answers_capped_below_the_protocol_length_are_labelled():
    assert "alpaca_eval: answers capped at 256 new tokens (protocol: 2048)" in labels(load_experiment(preset="smoke"))
    assert not any("capped" in label for label in labels(load_experiment(preset="paper-zephyr-7b")))
