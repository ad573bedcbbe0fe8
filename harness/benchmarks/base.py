"""The benchmark interface, and the registry the core loops over.

A benchmark is one package under harness/benchmarks/ (or an installed distribution declaring a
``seft_harness.benchmarks`` entry point) holding a subclass of ``Benchmark`` registered bare::

    @BENCHMARKS.register
    class MyBenchmark(Benchmark):
        name = "my_bench"
        title = "My benchmark"
        config = MyBenchConfig            # eval.my_bench, a BenchmarkConfig subclass
        metrics = (Metric("accuracy", "Acc", se_key="accuracy_se"),)

        def stages(self, exp, model=POLICY): ...     # generate -> (judge ->) score for the model stage

Everything else has a default that fits a judge-free benchmark (no judge settings, no protocol
judge, no judge calls, no labels). The core (cli, pipeline, estimate, views, external, reports,
the training data plan) never names a benchmark: it asks each registered one for its config
section, stages, labels, headline metrics, per-item scores, outside-output reader, cost and
decontamination prompts. A benchmark's score stage publishes its headline metrics with
``ctx.publish_metrics(model, name, {...})``; report sections of its own register in
harness.report_sections.SECTIONS from a module of its package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Sequence, TypeVar

from pydantic import BaseModel, Field

from harness.config import Experiment, Strict
from harness.engines.base import GenerationRequest
from harness.errors import HarnessError
from harness.methods import POLICY_STAGE as POLICY
from harness.registry import Registry
from harness.stages import Stage
MISSING = "-"

BENCHMARKS: Registry = Registry("benchmark", "harness.benchmarks", entry_points="seft_harness.benchmarks")

T = TypeVar("T")


class BenchmarkConfig(Strict):
    """What every ``eval.<name>`` section holds: whether the benchmark runs, and a labelled subset size
    (how the subset is picked, seeded or as the protocol does, is the benchmark's to say)."""

    enabled: bool = True
    limit: int | None = Field(None, ge=1)


class JudgedConfig(BenchmarkConfig):
    """The section of a benchmark scored by a judge: the registry id of its judge (None: models.judge)."""

    judge: str | None = None


@dataclass(frozen=True)
class Metric:
    """One headline metric as a run publishes it (``key``) and as tables show it (``label``).

    ``se_key``: the metric holding its standard error, shown as "± SE". ``compact``: shown in
    compact views (``harness ls``, intermediate models) beside the benchmark's primary metric.
    ``scale``: puts the metric on a 0-100 axis in figures that plot several benchmarks. ``unit``: what a
    difference of the scaled metric is counted in, in words (the study's verdicts: "+2.4 points").
    """

    key: str
    label: str
    se_key: str | None = None
    digits: int = 2
    compact: bool = False
    scale: float = 1.0
    unit: str = "points"

    @property
    def column(self) -> str:
        """Return the table column header ("AE2 WR ± SE" when it has a standard error)."""
        return f"{self.label} ± SE" if self.se_key else self.label


@dataclass(frozen=True)
class JudgeEstimate:
    """Stand-in judge requests for ``harness estimate`` (no policy has answered yet), the completion
    tokens each may use, and the assumptions behind them in words."""

    requests: list = field(repr=False)  # harness.judges.types.JudgeRequest
    reply_tokens: int
    assumptions: str


@dataclass(frozen=True)
class OutsideOutputs:
    """An outputs file made elsewhere, checked against the benchmark: the model it holds, the files
    its generate stage stores instead of generating ({name: text}), and a summary for the stage."""

    model: str
    files: dict[str, str]
    summary: dict


@dataclass(frozen=True)
class Published:
    """A published run: the model, who judged it, the files its score stage keeps ({name: JSON value})
    and its headline metrics (as a score stage publishes them)."""

    model: str
    judge: str
    files: dict[str, Any]
    metrics: dict


class RunFiles(Protocol):
    """What a benchmark reads from a finished run (harness.reports.collect.RunData is one)."""

    def stage_file(self, stage: str, name: str) -> Path | None:
        """Return the file ``name`` of the run's stage folder ``stage`` (None when absent)."""
        ...

    def data_dir(self) -> Path:
        """Return the evaluation data folder the run used."""
        ...


@dataclass(frozen=True)
class Exported:
    """What an export wrote: its files, and notes for the user (a subset that a leaderboard will not take, a
    proxy judge), printed beside the paths."""

    files: list[Path]
    notes: list[str] = field(default_factory=list)


Exporter = Callable[[RunFiles, str, str, Path], Exported]
"""Writes a run's results of one model stage in an exchange format: (run, model stage, model name, folder) -> Exported."""


@dataclass(frozen=True)
class StageNames:
    """The stage names of one benchmark for one model stage."""

    model: str
    generate: str
    judge: str
    score: str


def stage_names(benchmark: str, model: str = POLICY) -> StageNames:
    """Return the stage names scoring ``model``: "generate/B" for the final policy, "generate/B@MODEL" otherwise."""
    suffix = "" if model == POLICY else f"@{model.replace('/', '-')}"
    return StageNames(model, f"generate/{benchmark}{suffix}", f"judge/{benchmark}{suffix}", f"score/{benchmark}{suffix}")


class Benchmark:
    """A benchmark. Subclasses set the class attributes and implement ``stages``; the rest has
    defaults for a judge-free benchmark.

    Class attributes: ``name`` (its registry name, ``eval.<name>``, stage names); ``title`` (for
    people: "AlpacaEval 2.0"); ``config`` (the model of ``eval.<name>``); ``judge_settings`` (the
    model of its section in a judge registry entry, registered in harness.judges.registry
    JUDGE_SETTINGS; None: judge-free or nothing to set); ``protocol_judge`` (the registry id of
    the judge its published numbers use; others are labelled proxy judges); ``metrics`` (its
    headline metrics, primary first; ``item_scores`` gives per-item scores in one metric's unit,
    the primary's by default); ``notes``
    (what its columns and markers mean, for Table 1's notes); ``failure_key`` (the metric
    counting items left without a score); ``limit_key`` (the ``eval.<name>`` field
    ``harness eval --limit N`` sets); ``outputs_suffixes`` (the file names ``harness eval
    --outputs`` takes for this benchmark's outputs); ``published_runs`` (``harness eval import``
    reads published runs of it: ``read_published``); ``exports`` ({format name: Exporter}: the exchange
    formats ``harness export --format`` writes a run's results in, e.g. alpaca_eval's model_outputs.json).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    config: ClassVar[type[BenchmarkConfig]] = BenchmarkConfig
    judge_settings: ClassVar[type[BaseModel] | None] = None
    protocol_judge: ClassVar[str | None] = None
    metrics: ClassVar[tuple[Metric, ...]] = ()
    failure_key: ClassVar[str | None] = None
    limit_key: ClassVar[str] = "limit"
    outputs_suffixes: ClassVar[tuple[str, ...]] = ()
    published_runs: ClassVar[bool] = False
    notes: ClassVar[str] = ""
    exports: ClassVar[dict[str, Exporter]] = {}

    # --- config -------------------------------------------------------------------------------

    def settings(self, exp: Experiment) -> Any:
        """Return the validated section ``eval.<name>`` (defaults where absent)."""
        return section(exp, self.name, self.config)

    def enabled(self, exp: Experiment) -> bool:
        """Return whether the experiment runs this benchmark (``eval.<name>.enabled``)."""
        return self.settings(exp).enabled

    @property
    def judged(self) -> bool:
        """Return whether a judge scores this benchmark (its section has a ``judge`` field)."""
        return "judge" in self.config.model_fields

    @property
    def primary(self) -> Metric:
        """Return the primary headline metric (the first)."""
        return self.metrics[0]

    def metric(self, key: str | None = None) -> Metric:
        """Return the headline metric published as ``key`` (None: the primary); HarnessError naming the known keys."""
        if key is None:
            return self.primary
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise HarnessError(f"benchmark {self.name} has no headline metric '{key}'; known: {', '.join(m.key for m in self.metrics)}")

    # --- running --------------------------------------------------------------------------------

    def stages(self, exp: Experiment, model: str = POLICY) -> list[Stage]:
        """Return the stages scoring the model stage ``model`` (names from ``stage_names``), each with its phase."""
        raise NotImplementedError(f"benchmark {self.name} defines no stages")

    def first_turn_requests(self, exp: Experiment) -> list[GenerationRequest]:
        """Return the requests the generate stage sends before it has any answer (every prompt's first turn; [] for
        a benchmark that generates nothing). The core sends those of every enabled benchmark to a model together
        (harness.generation.first_turns_stage), so the generate stage finds them cached: it must ask exactly these."""
        return []

    def labels(self, exp: Experiment) -> list[str]:
        """Return the honesty labels this config puts on the benchmark's numbers (subset, caps, proxy judge)."""
        return []

    def estimate(self, exp: Experiment) -> JudgeEstimate | None:
        """Return stand-in judge requests for ``harness estimate`` (None: no judge calls)."""
        return None

    def decontamination_prompts(self, exp: Experiment) -> list[str]:
        """Return the prompt texts training data is decontaminated against (every turn)."""
        return []

    # --- outputs made elsewhere (harness eval --outputs) ---------------------------------------

    def read_outputs(self, exp: Experiment, path: Path) -> OutsideOutputs:
        """Return the checked outputs in ``path``, as the generate stage would have written them;
        HarnessError naming the mismatch. The files are validated against this config's subset."""
        raise HarnessError(f"benchmark {self.name} cannot score outputs made elsewhere")

    def read_published(self, directory: Path) -> Published:
        """Return a published run (outputs and judgments as their authors released them) read from ``directory``."""
        raise HarnessError(f"benchmark {self.name} has no published runs to import")

    def protocol_lengths(self, exp: Experiment) -> dict[str, Any]:
        """Return config values ({dotted path: value}) giving the protocol's answer lengths: outputs
        made elsewhere were not capped by this config, so they must not carry its "capped" labels."""
        return {}

    # --- reading finished runs (views and reports) ---------------------------------------------

    def item_scores(self, run: RunFiles, model: str = POLICY, metric: str | None = None) -> dict[str, float]:
        """Return {item id: score in the unit of the headline metric ``metric`` (None: the primary)} for the paired
        statistics, unscored items left out; {} when the benchmark has no per-item scores for that metric
        (HarnessError for a key that is not one of its metrics: ``self.metric(metric)``)."""
        return {}

    def answers(self, run: RunFiles, model: str = POLICY) -> dict[str, str]:
        """Return {item id: the model's answer} from the generate stage's outputs (the ids of ``item_scores``),
        for comparing two models' answers; {} for a benchmark that generates nothing."""
        return {}

    def drilldown(self, runs: Sequence[tuple[str, RunFiles]]) -> list[dict]:
        """Return per-item rows for the report's drill-down over ``(method name, run)`` pairs: {"benchmark",
        "prompt", "reference", "answers": [{"method", "output", "verdict"}]}, items every run answered."""
        return []

    def cell(self, metric: Metric, value: Callable[[str], Any]) -> str:
        """Return one metric as a table cell; ``value(key)`` gives a published (or mean) metric."""
        number = _number(value(metric.key))
        if number is None:
            return MISSING
        se = _number(value(metric.se_key)) if metric.se_key else None
        return f"{number:.{metric.digits}f}" + ("" if se is None else f" ± {se:.{metric.digits}f}")

    def markers(self, value: Callable[[str], Any]) -> list[str]:
        """Return short honesty markers the metrics themselves imply (e.g. "proxy LC"); ``value`` as in ``cell``."""
        return []

    def headline(self, metrics: dict) -> str:
        """Return the run's numbers on this benchmark for the end-of-run lines ("Acc 0.52 ± 0.03")."""
        return ", ".join(f"{m.label} {self.cell(m, metrics.get)}" for m in self.metrics)

    def count(self, metrics: dict) -> str:
        """Return how many items the numbers cover ("n=32")."""
        return f"n={metrics.get('n', MISSING)}"


def section(exp: Experiment, name: str, model: type[BenchmarkConfig]) -> Any:
    """Return ``eval.<name>`` validated by ``model`` (its defaults where the experiment has none)."""
    return model.model_validate(exp.eval.sections().get(name) or {})


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def get_benchmark(name: str) -> Benchmark:
    """Return the registered benchmark ``name`` (one-line error listing the known ones)."""
    return BENCHMARKS.get(name)()


def all_benchmarks() -> list[Benchmark]:
    """Return every registered benchmark, by name (the order of table columns)."""
    return [get_benchmark(name) for name in BENCHMARKS.names()]


def enabled_benchmarks(exp: Experiment) -> list[Benchmark]:
    """Return the registered benchmarks this experiment runs, by name."""
    return [b for b in all_benchmarks() if b.enabled(exp)]


def seeded_subset(items: Sequence[T], limit: int | None, seed: int, key: Callable[[T], str]) -> list[T]:
    """Return the ``limit`` items ranking first by sha256(seed, key(item)), in their original order
    (all of them when ``limit`` is None): the same items for the same seed, whatever the order given."""
    if limit is None or limit >= len(items):
        return list(items)
    ranks = [hashlib.sha256(f"{seed}\0{key(item)}".encode()).hexdigest() for item in items]
    kept = set(sorted(ranks)[:limit])
    return [item for item, rank in zip(items, ranks) if rank in kept]
