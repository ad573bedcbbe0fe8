"""Reports from a real run store: tables, figures, escaping, headless Chromium, compare, reproduce."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.io import read_json

# Model text that would run script if any view rendered it as HTML.
PAYLOAD = ("<script>document.title='PWNED';document.body.appendChild(document.createElement('div')).id='pwned'</script>"
           "<img src=x onerror=\"document.title='PWNED';this.id='pwned'\">")
REPORT_TITLE = "SEFT benchmark report"


def store_digest(results: Path) -> dict[str, str]:
    """Return sha256 of every file under ``results`` (through links), to show reports write nothing there."""
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture(scope="module")
def store(experiment_factory, harness_cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run store with two seeds of base and an externally scored run whose outputs carry a script payload."""
    root = tmp_path_factory.mktemp("report-store")
    results = root / "results"
    for seed, run_id in ((0, "base-s0"), (1, "base-s1")):
        config = experiment_factory(root, f"{run_id}.yaml", seed=seed)
        done = harness_cli("run", "--config", config, "--results", results, "--run-id", run_id)
        assert done.returncode == 0, done.stderr[-2000:]
    outputs = read_json(results / "base-s0" / "generate/alpaca_eval/model_outputs.json")
    hostile = [{"instruction": o["instruction"], "output": f"{PAYLOAD} answer {i}", "generator": "hostile-model"}
               for i, o in enumerate(outputs)]
    (root / "hostile.json").write_text(json.dumps(hostile))
    done = harness_cli("eval", "--outputs", root / "hostile.json", "--limit", len(hostile), "--config", root / "base-s0.yaml",
                       "--results", results, "--run-id", "hostile")
    assert done.returncode == 0, done.stderr[-2000:]
    return results


@pytest.fixture(scope="module")
def report(store: Path, harness_cli) -> Path:
    """The report of every run in the store, rendered by `harness report`; returns its folder."""
    before = store_digest(store)
    reports = store.parent / "reports"
    done = harness_cli("report", "--results", store, "--reports", reports, "--name", "all")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(reports / "all" / "report.md"), str(reports / "all" / "report.html")]
    assert store_digest(store) == before, "harness report changed the run store"
    return reports / "all"


def test_report_has_every_table_and_the_figures_it_has_data_for(report: Path) -> None:
    md = (report / "report.md").read_text()
    for title in ("Table 0: what was compared", "Table 1: main comparison", "Table 2: published reference rows",
                  "Table 3: pairwise significance", "Table 4: cost", "Table 5: SEFT rounds", "Appendix: provenance"):
        assert f"## {title}" in md
    for figure in ("win_rate", "mt_bench_radar", "length_vs_win_rate"):
        assert (report / "figures" / f"{figure}.png").stat().st_size > 1000
        assert (report / "figures" / f"{figure}.svg").read_text().lstrip().startswith("<?xml")
        assert f"](figures/{figure}.png)" in md
    # No training or SEFT records in base/external runs: those figures say why instead of drawing anything.
    for reason in ("no training stage wrote train_metrics.json with curves", "no SEFT round records with decision counts",
                   "no run has metrics for SEFT round models", "needs SEFT runs at two or more values of methods.seft.pool_fraction",
                   "no run has SEFT round records"):
        assert reason in md
    assert not (report / "figures" / "training_curves.png").exists()
    # Every figure states its data source and that its numbers are labelled.
    assert md.count("Numbers: labelled:") == 3 and md.count("_Data: ") == 3


def test_tables_pool_seeds_label_numbers_and_cite_published_rows(report: Path) -> None:
    md = (report / "report.md").read_text()
    main = md.split("## Table 1")[1].split("## Table 2")[0]
    base_row = next(line for line in main.splitlines() if line.startswith("| base |"))
    assert "| 2 |" in base_row  # two seeds pooled into one row
    assert "subset" in base_row and "proxy judge" in base_row and "smoke" in base_row
    assert "(proxy)" in base_row  # LC is the proxy, never in the official column unlabelled
    assert "agreement not checked" in base_row
    published = md.split("## Table 2")[1].split("## Table 3")[0]
    assert "| Mistral-7B-Base (zephyr-sft-full + UltraFeedback) | SimPO | 20.80 | 21.50 | - | - | 7.30 |" in published
    assert "| SFT (zephyr-7b-sft-full = this project's base) |" in published  # issue 15 item 8
    assert "10.99 ± 0.96" in published and "arXiv:2405.14734" in published
    assert "numbers not available on this machine" in published
    significance = md.split("## Table 3")[1].split("## Table 4")[0]
    assert "| hostile vs base | AlpacaEval 2.0: AE2 WR | 6 | 1 vs 2 |" in significance
    assert "| MT-Bench: MT avg |" not in significance  # the external run has no MT-Bench judgments to pair
    labels = md.split("## Table 0")[1].split("## Table 1")[0]
    assert "alpaca_eval: subset 6/805 (not comparable to the leaderboard)" in labels
    assert labels.count("alpaca_eval: subset 6/805") == 1


def test_model_text_is_escaped_in_html_and_markdown(report: Path) -> None:
    html = (report / "report.html").read_text()
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title=" in html  # shown as text in the drill-down
    assert html.count('<table class="dataframe data">') >= 6
    md = (report / "report.md").read_text()
    assert "<script" not in md and "<img" not in md


def chromium() -> str | None:
    """Return the Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium_without_running_model_script(report: Path, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        if os.environ.get("HARNESS_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed here (apt-get install chromium); CI installs it")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}"]
    page = (report / "report.html").resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    assert f"<title>{REPORT_TITLE}</title>" in dom  # the payload would have set it to PWNED
    assert 'id="pwned"' not in dom and "<script" not in dom
    assert "&lt;script&gt;document.title=" in dom
    assert len(re.findall(r"<table[^>]*class=\"dataframe data\"", dom)) >= 6
    assert len(re.findall(r"<img src=\"data:image/png;base64,", dom)) == 3
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_compare_prints_main_table_and_paired_deltas(store: Path, harness_cli) -> None:
    done = harness_cli("compare", "base-s0", "base-s1", "hostile", "--results", store)
    assert done.returncode == 0, done.stderr
    assert "Main comparison" in done.stdout and "Paired differences" in done.stdout
    assert re.search(r"hostile vs base\s+AlpacaEval 2.0: AE2 WR\s+6\s+1 vs 2", done.stdout)
    assert "note: alpaca_eval: subset 6/805" in done.stdout


def test_headline_table_of_store_runs(store: Path) -> None:
    from harness.reports.terminal import headline_table
    from harness.store import RunStore

    text = headline_table([RunStore(store).get("base-s0")])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["Method", "Seeds", "AE2"]
    assert lines[1].split()[:2] == ["base", "1"]
    from harness.reports.collect import read_run

    assert sum("note: " in line for line in lines) == len(read_run(store, "base-s0").labels)  # run, metric and judge-trust labels


def test_identical_runs_compare_as_zero_difference(store: Path) -> None:
    """The same run on both sides of a comparison: Δ 0 with a zero-width interval and p = 1."""
    from harness.reports.collect import MethodGroup, read_run
    from harness.reports.tables import significance_rows

    run = read_run(store, "base-s0")
    rows = significance_rows([MethodGroup("base", "base", [run]), MethodGroup("copy", "copy", [run])])
    assert [(r["Δ"], r["95% CI"], r["p"]) for r in rows] == [(0.0, (0.0, 0.0), 1.0)] * 2


def test_reproduce_list_describes_presets_with_hardware_wall_time_and_judge_budget(
        harness_cli, harness_env, tmp_path: Path) -> None:
    done = harness_cli("reproduce", "--list")
    assert done.returncode == 0, done.stderr
    paper = done.stdout.split("preset paper-zephyr-7b:")[1].split("preset ")[0]
    assert "8 CUDA GPUs" in paper and "wall time: not measured" in paper
    assert re.search(r"table-1: .*methods base, sft, dpo, orpo, rlhf, seft", paper)  # its methods_order
    assert re.search(r"judge budget: [\d,]+ judge calls, about \$[\d,.]+ \(gpt-4 -> ", paper)
    smoke = done.stdout.split("preset smoke:")[1]
    assert re.search(r"wall time: about \d+ min for `harness run --method all` with its sweeps, measured on 2 CPU cores", smoke)
    assert re.search(r"judge budget: [\d,]+ judge calls, about \$0\.00 ", smoke)
    study = done.stdout.split("preset cpu-study:")[1].split("preset ")[0]  # no sweeps: none named in its time
    assert re.search(r"wall time: about \d+ min for `harness run --method all`, measured on 2 CPU cores", study)
    assert re.search(r"judge budget: [\d,]+ judge calls, about \$0\.00 ", study)
    # a measurement of the user's own replaces the packaged one
    (tmp_path / "wall_times.yaml").write_text("smoke: {minutes: 12, machine: a laptop, date: 2026-12-05, commit: abc, source: notes}\n")
    mine = harness_cli("reproduce", "--list", "--preset", "smoke", env={**harness_env, "HARNESS_CONFIG_DIR": str(tmp_path)})
    assert mine.returncode == 0, mine.stderr
    assert "wall time: about 12 min for `harness run --method all` with its sweeps, measured on a laptop (2026-12-05, abc" in mine.stdout
    (tmp_path / "wall_times.yaml").write_text("smoke: {minutes: 12}\n")
    bad = harness_cli("reproduce", "--list", "--preset", "smoke", env={**harness_env, "HARNESS_CONFIG_DIR": str(tmp_path)})
    assert bad.returncode != 0 and bad.stderr.strip().endswith("missing machine, date, commit, source") and "Traceback" not in bad.stderr


def test_reproduce_runs_the_methods_order_and_the_sweeps_a_target_asks_for_then_reuses_them(
        experiment_factory, harness_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.experiment import load_experiment
    from harness.reports.reproduce import Target, run_target
    from harness.store import RunStore

    for name in ("FAKE_JUDGE_API_KEY", "HARNESS_MODEL_CACHE"):
        monkeypatch.setenv(name, harness_env[name])
    # the smoke preset's sweeps, pointed at base so the test trains nothing
    config = experiment_factory(tmp_path, eval={"mt_bench": {"enabled": False}}, methods_order=["base"],
                                sweeps={"seft-pool-fraction": {"method": "base", "vary": {"eval.alpaca_eval.limit": [2]}},
                                        "seft-evolution-source": {"method": "base"}})
    exp = load_experiment(config_path=config)
    load = lambda extra: load_experiment(config_path=config, overrides=extra)  # noqa: E731
    target = Target("t", "test target", ("table",), sweeps=True)
    runs = run_target(target, exp, RunStore(tmp_path / "results"), load=load, log=lambda line: None)
    # the preset's vary keys merge with ours: pool fractions x limit 2, then its two evolution-source points, all base
    # runs sharing their stages
    assert runs[0].id == "base-smoke" and len(runs) == 6
    assert all(r.id.startswith("base-smoke-seft-pool-fraction-") and r.id.endswith("limit_2") for r in runs[1:4])
    assert [r.id for r in runs[4:]] == ["base-smoke-seft-evolution-source-internal", "base-smoke-seft-evolution-source-external"]
    log: list[str] = []
    without = run_target(Target("t", "test target", ("table",)), exp, RunStore(tmp_path / "results"), log=log.append)
    assert [r.id for r in without] == ["base-smoke"] and log == ["reusing run base-smoke"]  # the finished run, as is


@pytest.mark.parametrize("args, message", [
    (["report", "no-such-run"], "no run 'no-such-run'"),
    (["report", "--name", "../x"], "invalid report name '../x'"),
    (["reproduce", "table-9"], "unknown reproduction target 'table-9'"),
    (["reproduce"], "needs a target"),
])
def test_bad_input_is_one_line_and_exit_3(store: Path, harness_cli, args, message) -> None:
    done = harness_cli(*args, "--results", store)
    assert done.returncode == 3
    assert done.stderr.strip().startswith("error: ") and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_published_runs_give_leaderboard_rows_and_a_significant_paired_difference(harness_cli, packaged_data: Path,
                                                                                 tmp_path: Path) -> None:
    """Real rows: two imported leaderboard runs reproduce the leaderboard's win rates, and their paired
    difference over the 805 shared prompts equals the difference of win rates, with an interval excluding 0."""
    import pandas as pd

    published = packaged_data / "alpaca_eval" / "published"
    board = pd.read_csv(published / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)
    for model in ("alpaca-7b", "claude-2"):
        done = harness_cli("eval", "import", published / model, "--results", tmp_path / "results")
        assert done.returncode == 0, done.stderr
    done = harness_cli("compare", "import-alpaca-7b", "import-claude-2", "--results", tmp_path / "results")
    assert done.returncode == 0, done.stderr
    for model in ("alpaca-7b", "claude-2"):
        row = board.loc[model]
        assert re.search(rf"import-{model}\s+1\s+{row.win_rate:.2f} ± {row.standard_error:.2f}\s+\S+ \(proxy\)", done.stdout)
    delta = board.loc["claude-2"].win_rate - board.loc["alpaca-7b"].win_rate
    match = re.search(r"import-claude-2 vs import-alpaca-7b\s+AlpacaEval 2.0: AE2 WR\s+805\s+1 vs 1\s+(\S+)\s+\[(\S+), (\S+)\]", done.stdout)
    assert match, done.stdout
    difference, low, high = (float(g.rstrip("]")) for g in match.groups())
    assert difference == pytest.approx(delta, abs=0.01)
    assert 0 < low < difference < high
