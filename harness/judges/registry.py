"""The judge registry: judges are data (the packaged harness/configs/judges.yaml, plus $HARNESS_CONFIG_DIR/judges.yaml
and an experiment's eval.judge_registry, each adding entries or replacing same-id ones), validated into JudgeEntry.

Besides the JudgeEntry fields, an entry holds one section per benchmark that has judge settings
(``alpaca_eval: {annotator, guided}``, ``mt_bench: {mode}``): each benchmark registers the model
of its section in JUDGE_SETTINGS, under its own name, and an entry is validated by those models
when the file loads (defaults for sections left out; any other key is an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from harness.config_files import config_layers
from harness.errors import HarnessError
from harness.judges.backends import BACKEND_FIELDS, JUDGE_BACKENDS, field_problem
from harness.proc import CpuThreads
from harness.registry import Registry

REGISTRY_FILE = "judges.yaml"  # in the configuration folders (harness.config_files)
GUIDED_KINDS = ("choice", "regex", "json", "grammar")  # vLLM structured_outputs constraints
# Entry fields that change how a judge is called but not what it answers.
OPERATIONAL_FIELDS = {
    "api_key_env": True,
    "price_per_million": True,
    "concurrency": True,
    "timeout_s": True,
    "max_retries": True,
    "backoff_base_s": True,
    "backoff_max_s": True,
    # Prefix caching reuses computed KV for shared prompt prefixes, and the CPU thread binding splits
    # the same arithmetic over more cores: same answers (within bf16 noise, tests/test_judge_many.py),
    # less time.
    "server": {"gpu_memory_utilization": True, "startup_timeout_s": True, "prefix_caching": True, "cpu_threads": True},
    "last_check": True,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)


class JudgeSettings(_Strict):
    """A benchmark's section of a judge registry entry: how this judge runs that benchmark.
    Subclasses set ``name`` (the benchmark's) and register bare in JUDGE_SETTINGS."""

    name: ClassVar[str]

    def structured_outputs(self) -> str | None:
        """Return what in these settings needs the server to enforce structured outputs (None: nothing)."""
        return None


JUDGE_SETTINGS: Registry[type[JudgeSettings]] = Registry(
    "benchmark judge settings", "harness.benchmarks", entry_points="seft_harness.benchmarks")


class VLLMServerSettings(_Strict):
    """Arguments for the local ``vllm serve`` process of a vllm_local judge."""

    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=1)
    dtype: str = "auto"
    extra_args: tuple[str, ...] = ()
    startup_timeout_s: float = Field(900.0, gt=0.0)
    # vLLM's automatic prefix caching: judge prompts for one instruction share the template, the
    # instruction and often the reference output across every model judged by this server.
    prefix_caching: bool = True
    # Which cores the server computes on (vLLM's CPU build): as generation.engine.cpu_threads.
    cpu_threads: CpuThreads = "vllm-auto"

    def cli_args(self) -> list[str]:
        """Return these settings as vLLM server command-line arguments."""
        args = ["--gpu-memory-utilization", str(self.gpu_memory_utilization), "--dtype", self.dtype,
                "--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching"]
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        return args + list(self.extra_args)


class LastCheck(_Strict):
    """The summary of this judge's last `harness judge-check`, so users pick a judge by data.
    ``identity``: the short sha256 of the judge identity it measured (harness.judge_check.records)."""

    kappa: float | None
    kappa_ci: tuple[float | None, float | None]
    kendall_tau: float | None
    kendall_tau_ci: tuple[float | None, float | None] = (None, None)
    accuracy: float | None = None
    n: int = Field(ge=1)
    date: str
    identity: str


class JudgeEntry(_Strict):
    """One judge of the registry; benchmark sections (JUDGE_SETTINGS) are its extra keys, validated."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    backend: str  # a registered judge backend (harness.judges.backends): openai, openai_compatible, vllm_local
    model: str = Field(min_length=1)
    base_url: str | None = Field(None, pattern=r"^https?://")
    # The NAME of the environment variable holding the key (never the key itself).
    api_key_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    price_per_million: Price = Price(input=0.0, output=0.0)
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(120.0, gt=0.0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(1.0, ge=0.0)
    backoff_max_s: float = Field(60.0, ge=0.0)
    server: VLLMServerSettings | None = None  # vllm_local only; defaults filled in there
    last_check: LastCheck | None = None  # measured, not configured: never part of the judge's identity

    @model_validator(mode="before")
    @classmethod
    def _backend_defaults(cls, data: Any) -> Any:
        """Fill in the backend's defaults for fields the entry leaves out (vllm_local: server settings)."""
        backend = data.get("backend") if isinstance(data, dict) else None
        if not isinstance(backend, str):
            return data
        try:
            defaults = JUDGE_BACKENDS.get(backend).defaults
        except HarnessError:
            return data  # the backend field's own validator reports it
        return {**data, **{field: value for field, value in defaults.items() if data.get(field) is None}}

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str) -> str:
        try:
            JUDGE_BACKENDS.get(backend)
        except HarnessError as exc:
            raise ValueError(str(exc)) from None
        return backend

    @model_validator(mode="after")
    def _backend_fields(self) -> JudgeEntry:
        problem = field_problem(self.backend, {field for field in BACKEND_FIELDS if getattr(self, field) is not None})
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _benchmark_sections(self) -> JudgeEntry:
        """Validate each benchmark section with its registered settings model (defaults for those left
        out), refusing other keys and constraints the backend cannot enforce."""
        sections = self.__pydantic_extra__
        unknown = sorted(set(sections) - set(JUDGE_SETTINGS.names()))
        if unknown:
            raise PydanticCustomError("judge_section", "{message}", {"message": (
                f"{unknown[0]}: neither a judge field nor a benchmark's judge settings "
                f"({', '.join(JUDGE_SETTINGS.names()) or 'none registered'})")})
        for name, model in JUDGE_SETTINGS.items():
            raw = sections.get(name)
            try:
                settings = raw if isinstance(raw, model) else model.model_validate(raw or {})
            except ValidationError as exc:
                joint = "." if exc.errors()[0]["loc"] else ": "
                raise PydanticCustomError("judge_section", "{message}", {"message": f"{name}{joint}{_first_error(exc)}"}) from None
            needs = settings.structured_outputs()
            if needs and not JUDGE_BACKENDS.get(self.backend).supports_structured_outputs:
                raise PydanticCustomError("judge_section", "{message}", {"message": (
                    f"backend {self.backend} has no structured outputs, which {name} asks for ({needs})")})
            sections[name] = settings
        return self

    def settings(self, benchmark: str) -> JudgeSettings:
        """Return this judge's settings for ``benchmark`` (a registered JUDGE_SETTINGS name)."""
        return self.__pydantic_extra__[benchmark]

    def output_fields(self) -> dict[str, Any]:
        """Return the fields that can change this judge's answers (for cache and stage keys):
        everything but keys, prices, concurrency, timeouts, retries and server memory."""
        return self.model_dump(mode="json", exclude=OPERATIONAL_FIELDS)


def load_registry(user_path: Path | None = None) -> dict[str, JudgeEntry]:
    """Return the judges by id: the packaged registry, then $HARNESS_CONFIG_DIR/judges.yaml and ``user_path`` (if
    given), each one's entries replacing same-id ones and adding new ones."""
    judges: dict[str, JudgeEntry] = {}
    for path in config_layers(REGISTRY_FILE):
        judges.update(_read(path))
    if user_path is not None:
        judges.update(_read(Path(user_path)))
    return judges


def get_judge(judge_id: str, user_path: Path | None = None) -> JudgeEntry:
    """Return the registry entry ``judge_id``; HarnessError listing the known ids if absent."""
    judges = load_registry(user_path)
    if judge_id not in judges:
        raise HarnessError(f"unknown judge {judge_id!r}; known judges: {', '.join(sorted(judges))}")
    return judges[judge_id]


_READ_MEMO: dict[tuple, dict[str, JudgeEntry]] = {}


def _read(path: Path) -> dict[str, JudgeEntry]:
    """Return the validated entries of one registry file, by id (parsed once per file version: a stage graph
    asks for judges hundreds of times)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot read judge registry {path}: {exc.strerror}") from None
    key = (str(path.resolve()), text)
    if key not in _READ_MEMO:
        _READ_MEMO[key] = _parse(path, text)
    return dict(_READ_MEMO[key])


def _parse(path: Path, text: str) -> dict[str, JudgeEntry]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or set(data) != {"judges"} or not isinstance(data["judges"], list):
        raise HarnessError(f"{path}: a judge registry is a mapping with one key, 'judges', holding a list of entries")
    judges: dict[str, JudgeEntry] = {}
    for index, raw in enumerate(data["judges"]):
        name = raw.get("id", f"#{index}") if isinstance(raw, dict) else f"#{index}"
        try:
            entry = JudgeEntry.model_validate(raw)
        except ValidationError as exc:
            raise HarnessError(f"{path}: judge {name!r}: {_first_error(exc)}") from None
        if entry.id in judges:
            raise HarnessError(f"{path}: judge id {entry.id!r} appears twice")
        judges[entry.id] = entry
    return judges


def _first_error(exc: ValidationError) -> str:
    """Return a one-line summary of a validation error (field and message, never the value)."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"
