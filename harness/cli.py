"""The `harness` command line: thin wrappers over pipeline, store and reports.

Scriptable: `--json` on ls, show, compare and estimate; `--version`; `-q`/`-v`; shell completion
(`harness --install-completion`); one exit status per error class (harness/errors.py, README).
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

import harness
from harness.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, HarnessError

EXIT_CODES = ("Exit status: 0 success; 1 unexpected error (a bug: traceback); 2 usage error; 3 bad input or config; "
              "4 runtime failure (training, judge server, engine); 5 judge budget reached; 130 interrupted.")

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False, epilog=EXIT_CODES,
                  help="SEFT benchmark harness: train -> generate -> judge -> score -> report.")


class Registered:
    """Names an option takes from a registry (methods, benchmarks, export formats), asked only when needed: to
    check a value, for --help and for shell completion, so a command without such an option imports no plug-in."""

    def __init__(self, key: str, names: Callable[[], list[str]], *extra: str):
        self.key, self._names, self._extra = key, names, extra

    def names(self) -> list[str]:
        """Return the registered names, then the extra ones (e.g. "all")."""
        return [*self._names(), *self._extra]

    def check(self, value: Optional[str]) -> Optional[str]:
        """Return ``value`` if registered (or None); a usage error (exit 2) naming the choices if not."""
        if value is not None and value not in self.names():
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(self.names())}")
        return value

    def complete(self, incomplete: str) -> list[str]:
        """Return the names starting with ``incomplete`` (shell completion)."""
        return [name for name in self.names() if name.startswith(incomplete)]

    def option(self, default: Optional[str], flag: str, help: str) -> Any:
        """Return a typer option taking one of the names (``command()`` lists them in --help)."""
        return typer.Option(default, flag, metavar=self.key, callback=self.check, autocompletion=self.complete, help=help)


def _method_names() -> list[str]:
    from harness.methods import METHODS

    return METHODS.names()


def _benchmark_names() -> list[str]:
    from harness.benchmarks.base import BENCHMARKS

    return BENCHMARKS.names()


def _export_formats() -> list[str]:
    from harness.export import export_formats

    return export_formats()


def _judge_ids(incomplete: str) -> list[str]:
    """Return the judge ids of the packaged and $HARNESS_CONFIG_DIR registries starting with ``incomplete``
    (completion only: an experiment's eval.judge_registry may add judges, so the value is checked once it loads)."""
    from harness.judges.registry import load_registry

    return [judge for judge in load_registry() if judge.startswith(incomplete)]


METHOD_OR_ALL = Registered("METHOD|all", _method_names, "all")
METHOD = Registered("METHOD", _method_names)
BENCHMARK = Registered("BENCHMARK", _benchmark_names)
FORMAT = Registered("FORMAT", _export_formats)
REGISTERED = {r.key: r for r in (METHOD_OR_ALL, METHOD, BENCHMARK, FORMAT)}
ResultsOption = typer.Option(Path("results"), "--results", envvar="HARNESS_RESULTS", help="Run store folder.")
JsonOption = typer.Option(False, "--json", help="Print JSON for scripts (json.loads reads it).")
PresetOption = typer.Option(None, "--preset", help="A preset (`harness presets`; default: smoke).")
ConfigOption = typer.Option(None, "--config", help="Experiment YAML (may say `extends: PRESET`).")
SetOption = typer.Option([], "--set", help="Override a config key: a.b.c=value (repeatable).")
MaxUsdOption = typer.Option(None, "--max-usd", help="Stop judging cleanly before spending more than this.")


def _experiment(preset: Optional[str], config: Optional[Path], overrides: list[str]):
    from harness.experiment import load_experiment

    return load_experiment(preset=preset, config_path=config, overrides=overrides)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"harness (seft-harness) {harness.__version__}")
        raise typer.Exit()


@app.callback()
def console(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Results, warnings and errors only: no progress lines or bars."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also engine and server output (otherwise in the run's "
                                 "logs/) and debug logging."),
) -> None:
    """SEFT benchmark harness: train -> generate -> judge -> score -> report."""
    from harness.logs import NORMAL, QUIET, VERBOSE, set_console_level

    if quiet and verbose:
        raise typer.BadParameter("choose one of --quiet and --verbose")
    set_console_level(QUIET if quiet else VERBOSE if verbose else NORMAL)


def _print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (numpy scalars as Python numbers)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_plain))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@app.command()
def run(
    method: str = METHOD_OR_ALL.option("base", "--method", help="A registered method (base: no training), or all "
                                       "(the experiment's methods_order)."),
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
    method: Optional[str] = METHOD.option(None, "--method", help="The method every grid point runs (e.g. seft)."),
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
    """Write the model cards of each run's scored models, then print each run's status, folder and headline numbers,
    a table when there are several, and the labels once."""
    from harness.model_card import write_cards
    from harness.reports.collect import from_run
    from harness.views import headline_lines, runs_table

    runs = runs if isinstance(runs, list) else [runs]
    for run in runs:
        write_cards(from_run(run))
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
    benchmark: Optional[str] = BENCHMARK.option(None, "--benchmark", help="A registered benchmark (default: the one "
                                                "whose outputs files these names are)."),
    judge: Optional[str] = typer.Option(None, "--judge", autocompletion=_judge_ids, help="Judge id from the registry "
                                        "(default: the preset's); checked against the experiment's registry."),
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
                benchmark: Optional[str] = BENCHMARK.option(None, "--benchmark", help="The benchmark of the published run "
                                                            "(default: the one benchmark with published runs)."),
                results: Path = ResultsOption) -> None:
    """Import a published run (outputs and judgments as released) as a run; print its id."""
    from harness.external import import_published_run
    from harness.store import RunStore

    run = import_published_run(directory, RunStore(results), benchmark=benchmark, name=name, argv=sys.argv)
    typer.echo(run.id)


@app.command()
def estimate(
    method: str = METHOD_OR_ALL.option("base", "--method", help="A registered method, or all (the experiment's methods_order)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    as_json: bool = JsonOption,
) -> None:
    """Print judge calls, tokens and dollars per benchmark and method; runs nothing."""
    from harness.estimate import estimate as compute, format_estimate

    exp = _experiment(preset, config, overrides)
    rows = compute(exp, list(exp.methods_order) if method == "all" else [method])
    _print_json({"preset": exp.preset, "rows": rows}) if as_json else typer.echo(format_estimate(rows))


@app.command("plan")
def plan_stages(
    method: str = typer.Option("base", "--method", help="Method, or 'all' (the experiment's methods_order)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
) -> None:
    """Print each method's stages and every training stage's resolved TRL arguments; runs and writes nothing."""
    from harness.dry_run import plan_text
    from harness.methods import get_method

    exp = _experiment(preset, config, overrides)
    typer.echo(plan_text(exp, list(exp.methods_order) if method == "all" else [get_method(method).name]))


@app.command("judge-check")
def judge_check(
    judge: str = typer.Argument(..., autocompletion=_judge_ids, help="Judge id from the registry."),
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
def list_runs(results: Path = ResultsOption, as_json: bool = JsonOption) -> None:
    """List runs: id, method, preset, status and headline metrics."""
    from harness.store import RunStore
    from harness.views import run_summaries, runs_table

    summaries = run_summaries(RunStore(results))
    _print_json(summaries) if as_json else typer.echo(runs_table(summaries))


@app.command()
def show(run_id: str, as_json: bool = JsonOption, results: Path = ResultsOption) -> None:
    """Print one run: status, stages with keys, metrics (``--json`` for scripts)."""
    from harness.store import RunStore
    from harness.views import run_record, run_text

    record = run_record(RunStore(results).get(run_id))
    _print_json(record) if as_json else typer.echo(run_text(record))


@app.command()
def presets() -> None:
    """List the presets: the packaged ones and $HARNESS_CONFIG_DIR/presets (a user preset of the same name wins)."""
    from harness.experiment import list_presets

    for name, found in list_presets().items():
        where = "" if found.origin == "packaged" else f"  (user: {found.path}" + (
            ", overrides the packaged one)" if found.overrides_packaged else ")")
        typer.echo(name + where)


@app.command()
def export(
    run_id: str = typer.Argument(..., help="The run to export."),
    folder: Path = typer.Argument(..., help="Folder to write into (created if missing)."),
    fmt: str = FORMAT.option(..., "--format", help="Exchange format: a benchmark's (alpaca_eval: model_outputs.json; "
                             "fastchat: MT-Bench answers and judgments) or hf (weights, tokenizer, chat template, model card)."),
    model: str = typer.Option("policy", "--model", help="The model stage to export (default: the final policy; "
                              "e.g. seft/round-1)."),
    name: Optional[str] = typer.Option(None, "--name", help="The model's name in the files (default: the run id)."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="With --format hf: upload the folder to this "
                                              "hub model repository (needs a reachable hub and a token)."),
    results: Path = ResultsOption,
) -> None:
    """Write a run's results in a format other tools read (alpaca_eval, FastChat, the Hugging Face hub); print the files."""
    from harness.export import HF, export_run, push_to_hub as push

    if push_to_hub and fmt != HF:
        raise HarnessError(f"--push-to-hub uploads weights: use it with --format {HF}")
    exported = export_run(results, run_id, fmt, folder, model=model, name=name)
    for path in exported.files:
        typer.echo(str(path))
    for note in exported.notes:
        typer.echo(f"  note: {note}")
    if push_to_hub:
        typer.echo(f"pushed to {push(folder, push_to_hub)}")


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
def compare(runs: list[str] = typer.Argument(..., help="Run ids to compare."), results: Path = ResultsOption,
            as_json: bool = JsonOption) -> None:
    """Print the main table and the paired deltas (vs base and SFT) of the given runs."""
    from harness.reports.collect import read_runs
    from harness.reports.terminal import compare_data, compare_text

    read = read_runs(results, runs)
    _print_json(compare_data(read)) if as_json else typer.echo(compare_text(read))


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


def command() -> Any:
    """Return the click command of ``app``; an option taking registered names shows them in --help, listed only
    when the help is drawn."""
    root = typer.main.get_command(app)
    pending = [root]
    while pending:
        cmd = pending.pop()
        pending += list(getattr(cmd, "commands", {}).values())
        for param in cmd.params:
            if param.metavar in REGISTERED:
                names = REGISTERED[param.metavar].names
                param.metavar, param.display_type = None, lambda ctx, names=names: f"<{'|'.join(names())}>"
    return root


def main() -> None:
    """Console entry point: a HarnessError is one line on stderr and its class's exit status (harness/errors.py),
    a full disk is one line and the runtime-failure status; Ctrl-C exits 130 with one line saying how to resume."""
    try:
        command()(prog_name="harness")
    except HarnessError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # Every write is atomic or a whole appended line: what finished is kept, a torn line is skipped.
        typer.echo(f"error: no space left on the device writing {exc.filename or 'the results'}: free some and rerun "
                   "the same command (finished items are reused)", err=True)
        sys.exit(EXIT_RUNTIME)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into exit 130
            typer.echo("interrupted: finished work is kept; rerun the same command to resume", err=True)
        raise


if __name__ == "__main__":
    main()
