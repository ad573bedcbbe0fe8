"""The `harness` command line: thin wrappers over pipeline, store and reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from harness.errors import HarnessError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="SEFT benchmark harness: train -> generate -> judge -> score -> report.")

ResultsOption = typer.Option(Path("results"), "--results", envvar="HARNESS_RESULTS", help="Run store folder.")
PresetOption = typer.Option(None, "--preset", help="Preset in configs/presets (default: smoke).")
ConfigOption = typer.Option(None, "--config", help="Experiment YAML (may say `extends: PRESET`).")
SetOption = typer.Option([], "--set", help="Override a config key: a.b.c=value (repeatable).")
MaxUsdOption = typer.Option(None, "--max-usd", help="Stop judging cleanly before spending more than this.")


def _experiment(preset: Optional[str], config: Optional[Path], overrides: list[str]):
    from harness.experiment import load_experiment

    return load_experiment(preset=preset, config_path=config, overrides=overrides)


@app.command()
def run(
    method: str = typer.Option("base", "--method", help="base, a training method (sft, dpo, orpo, rlhf, seft, ...), "
                               "or all (the experiment's methods_order)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run folder name (default METHOD-PRESET)."),
    force: list[str] = typer.Option([], "--force", help="Rerun this stage (and its dependants) even if finished."),
    vary: list[str] = typer.Option([], "--vary", help="KEY=V1,V2,...: run a sweep of the method instead (as harness sweep)."),
    sweeps: bool = typer.Option(True, "--sweeps/--no-sweeps", help="With --method all: also run the experiment's named sweeps."),
    max_usd: Optional[float] = MaxUsdOption,
    results: Path = ResultsOption,
) -> None:
    """Run (or resume) a method (or all of them, with the experiment's sweeps) and every enabled benchmark."""
    load = lambda extra: _experiment(preset, config, overrides + _budget(max_usd) + extra)  # noqa: E731
    exp = load([])  # config errors before slow imports
    from harness.pipeline import run_experiment, run_many
    from harness.store import RunStore
    from harness.sweep import method_jobs, parse_vary, sweep_jobs

    store = RunStore(results)
    if (method == "all" or vary) and run_id:
        raise HarnessError("--run-id names one run; --method all and --vary make one run each (METHOD-PRESET...)")
    if vary:
        if method == "all":
            raise HarnessError("--vary sweeps one method; name it with --method (e.g. --method seft)")
        runs = run_many(sweep_jobs(method, parse_vary(vary), load), store, force=set(force), argv=sys.argv)
    elif method == "all":
        runs = run_many(method_jobs(exp, list(exp.methods_order), load, with_sweeps=sweeps), store, force=set(force), argv=sys.argv)
    else:
        runs = [run_experiment(exp, method, store, run_id=run_id, force=set(force), argv=sys.argv)]
    _report(runs)


@app.command()
def sweep(
    method: Optional[str] = typer.Option(None, "--method", help="The method every grid point runs (e.g. seft)."),
    vary: list[str] = typer.Option([], "--vary", help="KEY=V1,V2,... a config key and its values (repeatable: a grid)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run the experiment's sweep of this name (config key sweeps)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    sweep_id: Optional[str] = typer.Option(None, "--sweep-id", help="Name shared by the sweep's runs (default from the grid)."),
    results: Path = ResultsOption,
) -> None:
    """Run a method over a grid of config values: one run per point, shared stages trained once."""
    from harness.pipeline import run_many
    from harness.store import RunStore
    from harness.sweep import named_sweep_jobs, parse_vary, sweep_jobs

    load = lambda extra: _experiment(preset, config, overrides + extra)  # noqa: E731
    if name:
        if method or vary or sweep_id:
            raise HarnessError("--name runs a sweep the config defines; leave out --method, --vary and --sweep-id")
        jobs = named_sweep_jobs(load([]), name, load)
    elif not method:
        raise HarnessError("harness sweep needs --method and --vary KEY=V1,V2,... (or --name NAME of a configured sweep)")
    else:
        jobs = sweep_jobs(method, parse_vary(vary), load, sweep_id)
    _report(run_many(jobs, RunStore(results), argv=sys.argv))


def _budget(max_usd: Optional[float]) -> list[str]:
    return [] if max_usd is None else [f"eval.max_usd={max_usd}"]


def _report(runs) -> None:
    """Print each run's status, folder and headline numbers, a table when there are several, and the labels once."""
    from harness.views import headline_lines, runs_table

    runs = runs if isinstance(runs, list) else [runs]
    for run in runs:
        typer.echo(f"run {run.id}: {run.record['status']} -> {run.dir}")
        for line in headline_lines(run.record):
            typer.echo(f"  {line}")
    if len(runs) > 1:
        typer.echo(runs_table([run.record for run in runs]))
    for label in sorted({label for run in runs for label in run.record.get("labels", [])}):
        typer.echo(f"  note: {label}")


eval_app = typer.Typer(help="Score outputs made elsewhere, or import published results.", no_args_is_help=False)
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
def eval_outputs(
    ctx: typer.Context,
    outputs: list[Path] = typer.Option([], "--outputs", help="A benchmark's outputs file (each benchmark says which: "
                                       "`harness eval --outputs X` without --benchmark lists them); repeat to score "
                                       "several models with one judge start (one run each)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="A registered benchmark (default: the one "
                                            "whose outputs files these names are)."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Judge id from the registry (default: the preset's)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score a labelled subset of N (the benchmark says of what)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run folder name, one --outputs only (default eval-MODEL-BENCHMARK)."),
    max_usd: Optional[float] = typer.Option(None, "--max-usd", help="Stop judging cleanly before spending more than this (all files together)."),
    results: Path = ResultsOption,
) -> None:
    """Judge and score outputs files on one benchmark, one run per model (full set unless --limit)."""
    if ctx.invoked_subcommand is not None:
        return
    if not outputs:
        raise HarnessError("harness eval needs --outputs FILE (or the subcommand: harness eval import DIR)")
    from harness.external import outputs_benchmark, score_outputs
    from harness.store import RunStore

    scored = outputs_benchmark(outputs, benchmark)
    if judge and not scored.judged:
        raise HarnessError(f"--judge: benchmark {scored.name} has no judge")
    picked = [f"eval.{scored.name}.{scored.limit_key}={limit if limit else 'null'}"]
    picked += [f"eval.{scored.name}.judge={judge}"] if judge else []
    exp = _experiment(preset, config, picked + overrides + _budget(max_usd))
    _report(score_outputs(exp, scored.name, outputs, RunStore(results), run_id=run_id, argv=sys.argv))


@eval_app.command("import")
def eval_import(directory: Path, name: Optional[str] = typer.Option(None, "--name", help="Run id (default import-MODEL)."),
                benchmark: Optional[str] = typer.Option(None, "--benchmark", help="The benchmark of the published run "
                                                        "(default: the one benchmark with published runs)."),
                results: Path = ResultsOption) -> None:
    """Import a published run (outputs and judgments as released) as a run; print its id."""
    from harness.external import import_published_run
    from harness.store import RunStore

    run = import_published_run(directory, RunStore(results), benchmark=benchmark, name=name, argv=sys.argv)
    typer.echo(run.id)


@app.command()
def estimate(
    method: str = typer.Option("base", "--method", help="Method, or 'all' (the experiment's methods_order)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
) -> None:
    """Print judge calls, tokens and dollars per benchmark and method; runs nothing."""
    from harness.estimate import estimate as compute, format_estimate
    from harness.methods import get_method

    exp = _experiment(preset, config, overrides)
    methods = list(exp.methods_order) if method == "all" else [get_method(method).name]
    typer.echo(format_estimate(compute(exp, methods)))


@app.command("judge-check")
def judge_check(
    judge: str = typer.Argument(..., help="Judge id from the registry."),
    against: list[Path] = typer.Option([], "--against", help="Published run folder (repeatable; default: every packaged one)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Check a seeded subset of N items per model."),
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    results: Path = ResultsOption,
) -> None:
    """Measure JUDGE against the official AlpacaEval judge: agreement, position bias, noise, length bias."""
    exp = _experiment(None, config, overrides)
    from harness.judge_check.stages import run_judge_check
    from harness.judge_check.summary import format_summary
    from harness.store import RunStore

    run, summary = run_judge_check(exp, judge, RunStore(results), against=against or None, limit=limit, argv=sys.argv)
    typer.echo(format_summary(summary))
    typer.echo(f"run {run.id}: {run.record['status']} -> {run.dir}")


@app.command("ls")
def list_runs(results: Path = ResultsOption) -> None:
    """List runs: id, method, preset, status and headline metrics."""
    from harness.store import RunStore
    from harness.views import run_summaries, runs_table

    typer.echo(runs_table(run_summaries(RunStore(results))))


@app.command()
def show(run_id: str, as_json: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
         results: Path = ResultsOption) -> None:
    """Print one run: status, stages with keys, metrics (``--json`` for scripts)."""
    from harness.store import RunStore
    from harness.views import run_record, run_text

    record = run_record(RunStore(results).get(run_id))
    typer.echo(json.dumps(record, indent=2) if as_json else run_text(record))


@app.command()
def presets() -> None:
    """List the presets in configs/presets."""
    from harness.experiment import list_presets

    typer.echo("\n".join(list_presets()))


ReportsOption = typer.Option(Path("reports"), "--reports", help="Folder that holds reports/<name>/.")


@app.command()
def report(runs: Optional[list[str]] = typer.Argument(None, help="Run ids (default: every finished run)."),
           name: str = typer.Option("latest", "--name", help="Report folder name under --reports."),
           results: Path = ResultsOption, reports: Path = ReportsOption) -> None:
    """Render reports/NAME/report.md and report.html from the run store alone; print both paths."""
    from harness.reports.collect import read_runs
    from harness.reports.render import render_runs

    for path in render_runs(read_runs(results, runs or []), reports, name):
        typer.echo(str(path))


@app.command()
def compare(runs: list[str] = typer.Argument(..., help="Run ids to compare."), results: Path = ResultsOption) -> None:
    """Print the main table and the paired deltas (vs base and SFT) of the given runs."""
    from harness.reports.collect import read_runs
    from harness.reports.terminal import compare_text

    typer.echo(compare_text(read_runs(results, runs)))


@app.command()
def reproduce(
    target: Optional[str] = typer.Argument(None, help="A reproduction target (table-1, figures; --list shows them)."),
    list_targets: bool = typer.Option(False, "--list", help="Show what can be reproduced and what each needs."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    results: Path = ResultsOption,
    reports: Path = ReportsOption,
) -> None:
    """Run (or reuse) every method of the experiment's methods_order under a preset, then render a target's sections."""
    from harness.reports import reproduce as repro

    if list_targets:
        typer.echo(repro.describe([preset] if preset else None))
        return
    if target is None:
        raise HarnessError("harness reproduce needs a target (see --list)")
    chosen = repro.get_target(target)
    load = lambda extra: _experiment(preset, config, overrides + extra)  # noqa: E731
    exp = load([])
    from harness.reports.render import render_runs
    from harness.store import RunStore

    runs = repro.run_target(chosen, exp, RunStore(results), load=load, argv=sys.argv, log=typer.echo)
    for path in render_runs(runs, reports, f"{chosen.name}-{exp.preset or exp.name}", sections=chosen.sections()):
        typer.echo(str(path))


def main() -> None:
    """Console entry point: HarnessError -> one line on stderr, exit status 2."""
    try:
        app()
    except HarnessError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
