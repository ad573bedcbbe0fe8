"""Judge faults at the pipeline level: a full `harness run` (tiny policy, hf engine) judged by a
scripted OpenAI-compatible server that answers some prompts with 429/500/slow/empty/garbage
first, one permanently with 500s, and echoes the API key in its error bodies.

What it proves: the run still finishes with metrics for both benchmarks; each prompt gets exactly
the requests the bounded retry policy allows; every failure is counted in `harness show --json`
(never silently dropped); a `--force` rerun of the judge stages asks again only for what failed
(successful judgments come from the judgment cache); the API key reaches the server but no file
of the run store and no captured output; a rejected key (401) stops the run with exit 2 and a
one-line `error:` naming the judge, without the key.

Unparseable and blank completions (garbage, empty) are the judge's answer, not a transport
failure (alpaca_eval's decoder keeps a blank reply and parses its logprobs; FastChat records -1):
they are cached and counted (AlpacaEval n_missing, MT-Bench n_failed), and only MT-Bench re-asks
them within the run, because this run opts in to parse retries (FastChat's protocol has none); a
rerun does not ask again (alpaca_eval's own annotator also stores missing annotations by default,
``is_store_missing_annotations``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer

from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.mt_bench.loaders import load_mt_bench_questions

SECRET = "sk-test-SECRET-123"
KEY_ENV = "FAULTS_JUDGE_API_KEY"
JUDGE_ID = "faulty-judge"
REVOKED_JUDGE_ID = "revoked-judge"
MAX_RETRIES = 2  # the registry entry's max_retries: at most 3 HTTP calls per attempt sequence
MAX_PARSE_RETRIES = 2  # eval.mt_bench.max_parse_retries (opt-in; default 0): MT-Bench re-asks unparsed verdicts twice
N_ALPACA = 6
MT_VERDICT = "The answer is fine. Rating: [[7]]"

# One schedule per AlpacaEval item / MT-Bench question (both turns), in data order.
FAULTS = [("429", "ok"), ("500", "ok"), ("slow", "ok"), ("empty", "ok"), ("garbage",), ("500",)]
RECOVERED_ALPACA = 5  # its judge recovers before the rerun: the rerun asks once more and succeeds
# HTTP calls the first run makes for a prompt with each schedule; MT-Bench re-asks blank and garbage verdicts.
CALLS = {("ok",): 1, ("429", "ok"): 2, ("500", "ok"): 2, ("slow", "ok"): 2, ("empty", "ok"): 1, ("garbage",): 1,
         ("500",): MAX_RETRIES + 1}
MT_BENCH_CALLS = CALLS | {("empty", "ok"): 2, ("garbage",): 1 + MAX_PARSE_RETRIES}


class ScriptedJudge(FakeOpenAIServer):
    """The fake server with schedules chosen by a marker (an instruction or question) found in the
    prompt, AlpacaEval verdicts "m" with logprobs that match the text, MT-Bench ratings."""

    def __init__(self, rules: list[tuple[str, tuple[str, ...]]], **kwargs):
        super().__init__(**kwargs)
        self.rules = rules

    def schedule_for(self, prompt: str) -> tuple[str, ...]:
        return next((schedule for marker, schedule in self.rules if marker in prompt), self.schedule)

    def _next_behaviour(self, prompt: str) -> str:
        with self._lock:
            n = self._seen.get(prompt, 0)
            self._seen[prompt] = n + 1
        schedule = self.schedule_for(prompt)
        return schedule[min(n, len(schedule) - 1)]

    def completion(self, body: dict, content: str) -> dict:
        if content == self.answer and is_mt_bench_body(body):
            content = MT_VERDICT
        response = super().completion(body, content)
        logprobs = response["choices"][0]["logprobs"]
        if logprobs and content not in ("m", "M"):  # a real judge's garbage has no m/M alternatives
            logprobs["content"][0]["top_logprobs"] = [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                                      for t, lp in (("I", -0.1), ("The", -2.5))]
        return response

    def prompts(self) -> dict[str, int]:
        """Return {prompt: number of requests} over every chat request so far."""
        counts: dict[str, int] = {}
        for record in list(self.requests):
            prompt = record.body["messages"][-1]["content"]
            counts[prompt] = counts.get(prompt, 0) + 1
        return counts

    def mt_bench_prompts(self) -> set[str]:
        """Return the prompts (last messages) of the MT-Bench requests so far."""
        return {r.body["messages"][-1]["content"] for r in list(self.requests) if is_mt_bench_body(r.body)}


def is_mt_bench_body(body: dict) -> bool:
    """FastChat's single-answer judge prompts ask for "[[rating]]" (in the system message for
    second turns); alpaca_eval's do not."""
    return any("[[rating]]" in m.get("content", "") for m in body.get("messages", []))


@dataclass
class Runs:
    first: object
    first_show: dict
    first_counts: dict[str, int]
    first_schedules: dict[str, tuple[str, ...]]
    rerun: object
    rerun_show: dict
    rerun_counts: dict[str, int]
    revoked: object
    revoked_show: dict
    server: ScriptedJudge
    revoked_server: FakeOpenAIServer
    alpaca_markers: list[str]
    mt_markers: list[str]
    root: Path
    results: Path
    model_cache: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, experiment_factory, harness_cli, harness_env, packaged_data, model_cache_dir) -> Runs:
    root = tmp_path_factory.mktemp("judge-faults")
    results = root / "results"
    alpaca = [p.turns[0] for p in load_alpaca_eval(packaged_data, limit=N_ALPACA)]
    questions = [q.turns[0] for q in load_mt_bench_questions(packaged_data, per_category=1)]
    assert len(alpaca) == N_ALPACA and len(questions) == 8
    rules = list(zip(alpaca, FAULTS)) + list(zip(questions, FAULTS))
    env = {**harness_env, KEY_ENV: SECRET}

    with ScriptedJudge(rules, slow_s=3.0) as server, FakeOpenAIServer(("401",)) as revoked_server:
        common = {"backend": "openai_compatible", "model": "fake-gpt", "api_key_env": KEY_ENV,
                  "concurrency": 4, "timeout_s": 1.0,
                  "max_retries": MAX_RETRIES, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                  "alpaca_eval": {"annotator": "weighted_alpaca_eval_gpt4_turbo", "guided": None},
                  "mt_bench": {"mode": "unconstrained"}}
        registry = root / "judges.yaml"
        registry.write_text(yaml.safe_dump({"judges": [
            {"id": JUDGE_ID, "base_url": server.base_url, **common},
            {"id": REVOKED_JUDGE_ID, "base_url": revoked_server.base_url, **common}]}, sort_keys=False))
        sections = {"eval": {"judge_registry": str(registry), "alpaca_eval": {"limit": N_ALPACA},
                             "mt_bench": {"per_category": 1, "max_new_tokens": 8, "max_parse_retries": MAX_PARSE_RETRIES}},
                    "generation": {"max_new_tokens": 8}}
        config = experiment_factory(root, "faults.yaml", models={"judge": JUDGE_ID}, **sections)
        revoked_config = experiment_factory(root, "revoked.yaml", models={"judge": REVOKED_JUDGE_ID}, **sections)

        def harness(*args):
            return harness_cli(*args, "--results", results, env=env, cwd=root, timeout=300)

        def show(run_id):
            shown = harness("show", run_id, "--json")
            assert shown.returncode == 0, shown.stderr[-3000:]
            return json.loads(shown.stdout)

        first = harness("run", "--config", config, "--run-id", "faults")
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
        first_show, first_counts = show("faults"), server.prompts()
        first_schedules = {prompt: server.schedule_for(prompt) for prompt in first_counts}

        server.rules[RECOVERED_ALPACA] = (alpaca[RECOVERED_ALPACA], ("ok",))
        rerun = harness("run", "--config", config, "--run-id", "faults",
                        "--force", "judge/alpaca_eval", "--force", "judge/mt_bench")
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
        rerun_show, rerun_counts = show("faults"), server.prompts()

        revoked = harness("run", "--config", revoked_config, "--run-id", "revoked")
        revoked_show = show("revoked")

    return Runs(first, first_show, first_counts, first_schedules, rerun, rerun_show, rerun_counts, revoked,
                revoked_show, server, revoked_server, alpaca, questions, root, results, model_cache_dir)


def prompts_for(counts: dict[str, int], marker: str) -> dict[str, int]:
    return {p: n for p, n in counts.items() if marker in p}


def test_run_finishes_with_metrics_for_both_benchmarks(runs: Runs):
    for record in (runs.first_show, runs.rerun_show):
        assert record["status"] == "done"
        ae, mt = record["metrics"]["alpaca_eval"], record["metrics"]["mt_bench"]
        assert ae["n_total"] >= 1 and ae["win_rate"] is not None and ae["judge"] == JUDGE_ID
        assert mt["n_questions"] == 8 and mt["average"] == pytest.approx(7.0) and mt["judge"] == JUDGE_ID
    # The fake server saw every AlpacaEval item and both turns of every MT-Bench question.
    counts, mt_bench = runs.first_counts, runs.server.mt_bench_prompts()
    assert len(set(counts) - mt_bench) == N_ALPACA
    assert len(mt_bench) == 16
    for marker in runs.alpaca_markers:
        assert len(prompts_for(counts, marker)) == 1, marker
    for marker in runs.mt_markers:
        assert len(prompts_for(counts, marker)) == 2, marker


def test_retries_are_bounded_per_prompt(runs: Runs):
    for prompt, n in runs.first_counts.items():
        schedule = runs.first_schedules[prompt]
        expected = (MT_BENCH_CALLS if prompt in runs.server.mt_bench_prompts() else CALLS)[schedule]
        assert n == expected, (schedule, n, prompt[:200])
        assert n <= (MAX_RETRIES + 1) * (1 + MAX_PARSE_RETRIES)


def test_failures_are_counted_not_dropped(runs: Runs):
    ae = runs.first_show["metrics"]["alpaca_eval"]
    # Items 3 and 4 (blank and garbage verdicts, no m/M alternatives) have no preference; item 5 failed every attempt.
    assert ae["n_judge_failures"] == 1
    assert ae["n_missing"] == 3
    assert ae["n_total"] + ae["n_missing"] == N_ALPACA
    # Question 4: both turns unparsed after parse retries; question 5: both turns failed.
    assert runs.first_show["metrics"]["mt_bench"]["n_failed"] == 4

    run_dir = runs.results / "faults"
    annotations = json.loads((run_dir / "judge/alpaca_eval/annotations.json").read_text())
    assert len(annotations) == N_ALPACA
    judgments = [json.loads(line) for line in (run_dir / "judge/mt_bench/judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == 16 and sum(j["score"] is None for j in judgments) == 4
    errors = [j["error"] for j in judgments if j.get("error")]
    assert len(errors) == 2 and all("HTTP 500" in e for e in errors)


def test_rerun_asks_only_for_failed_judgments(runs: Runs):
    before, after = runs.first_counts, runs.rerun_counts
    assert set(after) == set(before)  # same generations: the same prompts, nothing new
    new = {p: after[p] - before[p] for p in after}
    for prompt, n in new.items():
        schedule = runs.first_schedules[prompt]
        if runs.alpaca_markers[RECOVERED_ALPACA] in prompt:
            assert n == 1, "the failed AlpacaEval item is asked again (and now succeeds)"
        elif schedule == ("500",):
            assert n == MAX_RETRIES + 1, "a still-failing item is retried, within the bound again"
        else:
            assert n == 0, (schedule, prompt[:200])
    ae = runs.rerun_show["metrics"]["alpaca_eval"]
    assert ae["n_judge_failures"] == 0 and ae["n_missing"] == 2  # the blank and garbage verdicts stay missing
    assert runs.rerun_show["metrics"]["mt_bench"]["n_failed"] == 4
    for stage in ("policy", "generate/alpaca_eval", "generate/mt_bench"):
        assert f"[skip] {stage} " in runs.rerun.stdout, stage
    for stage in ("judge/alpaca_eval", "judge/mt_bench", "score/alpaca_eval", "score/mt_bench"):
        assert f"[run ] {stage} " in runs.rerun.stdout, stage


def test_api_key_is_sent_but_never_stored_or_printed(runs: Runs):
    sent = runs.server.requests + runs.revoked_server.requests
    assert sent and all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in sent)
    secret = SECRET.encode()
    # Every file of the run store (caches, manifests, judgments, provenance, configs, locks, logs),
    # the experiment and registry files beside it, and the model cache.
    files = [path for top in (runs.root, runs.model_cache) for path in top.rglob("*") if path.is_file()]
    assert any(path.parent.name == "judgments" for path in files)  # the walk reached the judgment cache
    leaks = [path for path in files if secret in path.read_bytes()]
    assert not leaks
    for proc in (runs.first, runs.rerun, runs.revoked):
        assert SECRET not in proc.stdout and SECRET not in proc.stderr


def test_rejected_key_exits_3_with_one_line_error(runs: Runs):
    proc = runs.revoked
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0]
    assert REVOKED_JUDGE_ID in errors[0] and "401" in errors[0] and KEY_ENV in errors[0]
    assert SECRET not in errors[0]
    assert runs.revoked_show["status"] == "failed"
    assert "alpaca_eval" not in runs.revoked_show.get("metrics", {})
    # The first 401 stops the judge: no request is retried after it.
    assert len(runs.revoked_server.requests) <= 4  # at most the requests already in flight (concurrency 4)
