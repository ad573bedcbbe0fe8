"""The fault schedule: every stage kind is interrupted, then the same command runs again. The rerun must
finish with every finished item reused, nothing generated, judged or billed twice, no torn line read
back, and no process of the interrupted harness left alive.

Every `harness` process of a case carries a tag in its environment, so the test finds all of its
descendants (supervisors, `accelerate launch`, training ranks) with `ps`-like scans of /proc.

Two runs carry the cases (each `harness` process SIGKILLed is the harness only, never its children):

  `harness run --method sft` (cpu.yaml) on a 256 MiB tmpfs in a private mount namespace (reached through
  /proc/<pid>/root; where no namespace can be made, ENOSPC injected at the store's writes instead):
    training, 1 process    killed after a checkpoint; the rerun resumes and ends on the same step, token count
                           and loss as an uninterrupted run
    disk full              filled once the rerun has cached some generations: the harness stops with one
                           line; once space is freed the next rerun reuses every cached generation
    truncated caches       every append-only cache (results/_cache/**/*.jsonl) loses half its last line: the
                           rerun recomputes exactly those items and repairs each file
  `harness run --method seft` with every training on 2 processes (cpu-ddp.yaml), killed in turn during
    SEFT sampling, SEFT revision, the round's training (after a checkpoint: both ranks exit within seconds;
    the rerun resumes while the killed run's rendezvous port is held and its lock files are left behind, and
    ends on the same step, token count and loss as an uninterrupted run), generation and judging; its judge
    fails 30% of calls (HTTP 500) and times out 10% (tests/fake_openai_server.py), and reruns of the judge
    stages ask again only for what failed, until nothing has; then `harness report`, killed while rendering.

Counts, printed by the last test for the README's reliability section:
  reused      finished items the rerun took from disk: cached generations and judgments, checkpointed steps
  recomputed  finished items done again: training steps past the last checkpoint, judge replies in flight at
              the kill (answered by the server, not yet stored: billed twice), truncated cache lines
  orphans     processes of an interrupted harness still alive ORPHAN_WAIT_S after it died
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml
from conftest import FAKE_JUDGE_KEY_ENV, FakeJudgeServer, harness_command
from test_resume import DONE_LINE, assert_store_is_whole, item_counts
from test_seft_method import SEFT_TINY, TINY_TRAINING

from harness.errors import EXIT_RUNTIME
from harness.io import iter_jsonl, read_json
from harness.train.job import read_job
from harness.train.launch import REPO_ROOT
from harness.train.run import last_checkpoint, train

TAG_ENV = "HARNESS_TEST_FAULT_CASE"
ORPHAN_WAIT_S = 10.0
RANKS_EXIT_S = 5.0     # "within seconds": the supervisor polls its parent every 0.5 s, then stops the group
CPU_DDP = str(REPO_ROOT / "harness" / "configs" / "accelerate" / "cpu-ddp.yaml")
LOSS_RTOL = 1e-5       # resumed vs. uninterrupted: the same computation restored from the checkpoint
RUN = "faults"
JUDGE_ID = "flaky-judge"
JUDGE_FAULTS = {"500": 0.3, "slow": 0.1}
JUDGE_CONCURRENCY = 4
# One retry: a prompt fails a pass with p = 0.4^2 = 0.16, so the first run leaves some of its 22 judgments
# failed (the draws are fixed per prompt and call; none failing has p ~ 0.02) and the reruns have work.
JUDGE_RETRIES = 1
MAX_JUDGE_PASSES = 6
DISK_SIZE = "256m"  # room for two checkpoints of the tiny model with optimizer state (~40 MB each)
TRAIN = {"max_steps": 8, "save_steps": 2, "per_device_batch_size": 2, "max_seq_length": 96, "learning_rate": 1.0e-3}
SEFT = {**SEFT_TINY, "rounds": 1, "prompts_per_round": 4,
        "sampling": {"temperature": 1.0, "max_new_tokens": 16}, "reviser_decoding": {"temperature": 0.0, "max_new_tokens": 24},
        "reviser_train": {"max_steps": 4, "per_device_batch_size": 2, "max_seq_length": 256, "learning_rate": 1.0e-3}}


@dataclass
class Case:
    """One fault and the rerun after it, in counts."""

    name: str
    reused: int = 0
    recomputed: int = 0
    orphans: int = 0
    exit_s: float | None = None  # seconds until every process of the killed harness was gone


@dataclass
class Leg:
    """One `harness` process of a case and its log."""

    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        """Return what the process printed so far."""
        return self.log.read_text(errors="replace")


class Harness:
    """Runs `harness` commands of one case, each process tagged so its descendants can be found."""

    def __init__(self, env: dict[str, str], cwd: Path, case: str, prefix: tuple[str, ...] = ()):
        self.cwd = cwd
        self.tag = f"{case}-{uuid.uuid4().hex[:12]}"
        self.env = {**env, TAG_ENV: self.tag}
        self.prefix = list(prefix)  # e.g. nsenter into the small disk's mount namespace
        self.legs = 0

    def start(self, *args: object) -> Leg:
        """Start `harness ARGS` in the background."""
        self.legs += 1
        log = self.cwd / f"{self.tag}-{self.legs}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(self.prefix + harness_command(*args), cwd=self.cwd, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)
        return Leg(proc, log)

    def run(self, *args: object, timeout_s: float = 900) -> Leg:
        """Run `harness ARGS` to the end; fail the test unless it succeeds."""
        leg = self.start(*args)
        rc = leg.proc.wait(timeout=timeout_s)
        assert rc == 0, leg.output()[-4000:]
        return leg

    def processes(self) -> list[int]:
        """Return the live processes carrying this case's tag (zombies have no environment and do not count)."""
        found, needle = [], f"{TAG_ENV}={self.tag}".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if needle in (entry / "environ").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop every process of this case (SIGSTOP) for the context, then let them go on (SIGCONT)."""
        pids = self.processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def kill(self, leg: Leg) -> tuple[float, int]:
        """SIGKILL the harness process of ``leg`` (only it); return (seconds until none of its processes
        was left, orphans alive after ORPHAN_WAIT_S, which are then killed)."""
        killed = time.monotonic()
        leg.proc.send_signal(signal.SIGKILL)
        assert leg.proc.wait(timeout=30) == -signal.SIGKILL
        while (alive := self.processes()) and time.monotonic() - killed < ORPHAN_WAIT_S:
            time.sleep(0.05)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        return round(time.monotonic() - killed, 2), len(alive)


def wait_until(leg: Leg, ready: Callable[[], bool], what: str, timeout_s: float = 600) -> None:
    """Return once ``ready()``; fail if the harness exits first or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if leg.proc.poll() is not None:
            pytest.fail(f"harness exited ({leg.proc.returncode}) before {what}: {leg.output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:g} s")
        time.sleep(0.02)


def records(path: Path) -> list[dict]:
    """Return the complete records of a cache file ([] when it does not exist)."""
    return list(iter_jsonl(path, appended=True))


def model_cache(results: Path, run_id: str, stage: str) -> Path:
    """Return the generation cache of the model of ``stage`` (keyed by its weights)."""
    sha = read_json(results / run_id / stage / "model.json")["weights_sha256"]
    return results / "_cache" / "generations" / f"{sha[:24]}.jsonl"


def model_cache_ready(results: Path, run_id: str, stage: str, count: int) -> Callable[[], bool]:
    """Return a check: does the generation cache of ``stage``'s model hold ``count`` records yet?"""
    return lambda: (results / run_id / stage / "model.json").is_file() and len(records(model_cache(results, run_id, stage))) >= count


def done_stages(results: Path, run_id: str) -> list[str]:
    """Return the stages run.json lists as done."""
    stages = (read_json(results / run_id / "run.json", default={}) or {}).get("stages", {})
    return [name for name, stage in stages.items() if stage.get("status") == "done"]


def assert_skipped(leg: Leg, stages: list[str]) -> None:
    """Every stage finished before the kill is reused by the rerun, not run again."""
    output = leg.output()
    assert all(f"[skip] {name} " in output for name in stages), (stages, output[-3000:])


def assert_caches_whole(results: Path, before: dict[Path, list[dict]] | None = None) -> None:
    """Every cache file holds each key once, ends on a whole line, and keeps the records of ``before``."""
    for path in (results / "_cache").rglob("*.jsonl"):
        kept = records(path)
        keys = [r["key"] for r in kept]
        assert len(keys) == len(set(keys)), f"{path} holds a key twice"
        assert path.read_bytes().endswith(b"\n"), f"{path} ends in a torn line"
    for path, old in (before or {}).items():
        by_key = {r["key"]: r for r in records(path)}
        assert all(by_key.get(r["key"]) == r for r in old), f"{path} lost or changed a record"


def cache_snapshot(results: Path) -> dict[Path, list[dict]]:
    """Return every cache file's complete records."""
    return {path: records(path) for path in (results / "_cache").rglob("*.jsonl")}


def done_counts(output: str, desc: str) -> tuple[int, int]:
    """Return (cached, generated) summed over the `<desc>: N cached, M generated` lines of ``output``."""
    found = [(int(c), int(g)) for name, c, g in DONE_LINE.findall(output) if name == desc]
    return sum(c for c, _ in found), sum(g for _, g in found)


def steps_logged(train_log: Path, attempt: int) -> int:
    """Return how many training steps the ``attempt``-th launch (1-based) logged in train.log."""
    attempts = train_log.read_text(errors="replace").split("\n$ ")
    return len(re.findall(r"\{'loss': ", attempts[attempt - 1]))


def check_resumed_training(stage_dir: Path, killed_at: int, tmp_path: Path, seen: Callable[[str], str] = str) -> Case:
    """Compare a resumed training stage with its job trained uninterrupted in this process, as one process
    with the same global batch (tests/test_ddp.py: the same losses within LOSS_RTOL); return its counts.
    ``seen`` maps a path the harness wrote to where this process sees it.

    The comparison across process counts needs whole global batches: when the rows do not fill an
    epoch's last one, accelerate completes each rank's last batch with rows from the epoch's start
    (even_batches), and 2 processes train on more (repeated) rows than 1.
    """
    summary = read_json(stage_dir / "train_metrics.json")["summary"]
    job = read_job(stage_dir / "job.yaml")
    job = job.model_copy(update={"train_file": seen(job.train_file), "eval_file": job.eval_file and seen(job.eval_file),
                                 "output_dir": str(tmp_path / "uninterrupted"),
                                 "args": {**job.args, "per_device_train_batch_size": summary["global_batch"]}})
    assert summary["resumed_from"] and Path(summary["resumed_from"]).name == f"checkpoint-{killed_at}"
    processes = summary["processes"]
    assert processes == 1 or len(records(Path(job.train_file))) % summary["global_batch"] == 0
    straight = train(job)
    assert (summary["steps"], summary["train_tokens"]) == (straight["steps"], straight["train_tokens"])
    assert summary["global_batch"] == straight["global_batch"]
    assert summary["final_loss"] == pytest.approx(straight["final_loss"], rel=LOSS_RTOL)
    return Case(f"training, {processes} process{'es' if processes > 1 else ''}", reused=killed_at,
                recomputed=steps_logged(stage_dir / "train.log", 1) - killed_at)


def rank_port(harness: Harness) -> int:
    """Return the rendezvous port (MASTER_PORT) in the environment of a running training rank of ``harness``."""
    for pid in harness.processes():
        try:
            if b"harness.train.run" in Path(f"/proc/{pid}/cmdline").read_bytes():
                env = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in item)
                if b"MASTER_PORT" in env:
                    return int(env[b"MASTER_PORT"])
        except OSError:
            continue
    pytest.fail("no running training rank with a rendezvous port")


def checkpointed(results: Path, stage: str, processes: int) -> Callable[[], bool]:
    """Return a check: has training stage ``stage`` written a complete checkpoint yet?"""
    return lambda: any(last_checkpoint(out, processes) for out in results.glob(f"_stages/{stage}/*/out"))


def killed_at_checkpoint(results: Path, stage: str, processes: int) -> tuple[Path, int]:
    """Return the folder of training stage ``stage`` and the step of its newest complete checkpoint."""
    out = next(results.glob(f"_stages/{stage}/*/out"))
    return out.parent, int(last_checkpoint(out, processes).name.split("-")[1])


def judge_registry(folder: Path, base_url: str) -> Path:
    """Write a judges YAML whose one judge (JUDGE_ID) is the server at ``base_url``; return its path."""
    entry = {"id": JUDGE_ID, "backend": "openai_compatible", "model": "flaky-judge-model", "base_url": base_url,
             "api_key_env": FAKE_JUDGE_KEY_ENV, "concurrency": JUDGE_CONCURRENCY, "timeout_s": 0.5,
             "max_retries": JUDGE_RETRIES, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
             "alpaca_eval": {"annotator": "weighted_alpaca_eval_gpt4_turbo", "guided": {"choice": ["m", "M"]}},
             "mt_bench": {"mode": "constrained"}}
    path = folder / "judges.yaml"
    path.write_text(yaml.safe_dump({"judges": [entry]}, sort_keys=False))
    return path


def judge_failures(results: Path, run_id: str) -> int:
    """Return the judge calls of a run that failed after their retries (AlpacaEval and MT-Bench)."""
    metrics = read_json(results / run_id / "run.json")["metrics"]
    return metrics["alpaca_eval"]["n_judge_failures"] + metrics["mt_bench"]["n_failed"]


def answered_twice(server: FakeJudgeServer) -> int:
    """Return how many prompts the server answered successfully more than once."""
    answered: dict[str, int] = {}
    for request in list(server.requests):
        if request.behaviour == "ok":
            prompt = request.body["messages"][-1]["content"]
            answered[prompt] = answered.get(prompt, 0) + 1
    return sum(n - 1 for n in answered.values())


@dataclass
class SeftChain:
    """The SEFT run killed once in each stage kind, then finished; its judge reruns and its report."""

    results: Path
    cases: dict[str, Case]
    judge_passes: list[tuple[int, int]]   # (failures before the pass, requests it made)
    requests_by_behaviour: dict[str, int]
    report: Path


@pytest.fixture(scope="module")
def seft_chain(experiment_factory, harness_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> SeftChain:
    root = tmp_path_factory.mktemp("fault-seft")
    results = root / "results"
    cases: dict[str, Case] = {}
    with FakeJudgeServer(fault_rates=JUDGE_FAULTS, latency_s=0.15, slow_s=1.0) as server:
        config = experiment_factory(root, "seft.yaml", data=TINY_TRAINING["data"], methods={"seft": SEFT},
                                    train={**TRAIN, "accelerate_config": CPU_DDP},
                                    generation={"engine": {"batch_size": 1}}, models={"judge": JUDGE_ID},
                                    eval={"judge_registry": str(judge_registry(root, server.base_url))})
        harness = Harness(harness_env, root, "seft")
        run = ("run", "--method", "seft", "--config", config, "--results", results, "--run-id", RUN)

        def leg_killed(name: str, ready: Callable[[], bool], what: str, reused: Callable[[], int],
                       before_kill: Callable[[], None] = lambda: None) -> Leg:
            """Run the command again until ``ready``, kill it, check it reused what finished before; record the case."""
            done, before = done_stages(results, RUN), cache_snapshot(results)
            leg = harness.start(*run)
            wait_until(leg, ready, what)
            before_kill()
            exit_s, orphans = harness.kill(leg)
            assert_skipped(leg, done)
            assert_caches_whole(results, before)
            cases[name] = Case(name, reused=reused(), exit_s=exit_s, orphans=orphans)
            return leg

        # SEFT sampling (after the reviser trained on 2 processes), then revision
        # a prompt's samples are one request (n = samples_per_prompt), cached together: counted in prompts
        per_prompt = SEFT["samples_per_prompt"]
        leg_killed("SEFT sampling", model_cache_ready(results, RUN, "model/base", 2 * per_prompt),
                   "2 prompts' cached SEFT samples", lambda: len(records(model_cache(results, RUN, "model/base"))) // per_prompt)
        leg = leg_killed("SEFT revision", model_cache_ready(results, RUN, "seft/reviser", 2), "2 cached revisions",
                         lambda: len(records(model_cache(results, RUN, "seft/reviser"))))
        assert done_counts(leg.output(), "seft-round-1-sample")[0] == cases["SEFT sampling"].reused

        # the round's SFT on 2 processes, after a checkpoint: its rendezvous port stays held and its locks stay behind
        port: list[int] = []
        leg = leg_killed("training, 2 processes", checkpointed(results, "seft/round-1", 2), "a round checkpoint", lambda: 0,
                         before_kill=lambda: port.append(rank_port(harness)))
        assert done_counts(leg.output(), "seft-round-1-revise")[0] == cases["SEFT revision"].reused
        stage_dir, killed_at = killed_at_checkpoint(results, "seft/round-1", 2)
        assert killed_at < TRAIN["max_steps"]
        assert (results / RUN / ".lock").exists() and stage_dir.with_name(stage_dir.name + ".lock").exists()
        with socket.create_server(("127.0.0.1", port[0])):
            leg_killed("generation", model_cache_ready(results, RUN, "policy", 2), "2 cached generations",
                       lambda: len(records(model_cache(results, RUN, "policy"))))
        resumed = check_resumed_training(stage_dir, killed_at, root)
        cases["training, 2 processes"] = replace(resumed, exit_s=cases["training, 2 processes"].exit_s,
                                                 orphans=cases["training, 2 processes"].orphans)

        judgments = lambda: next(results.glob("_cache/judgments/*.jsonl"), None)  # noqa: E731
        leg_killed("judging", lambda: judgments() is not None and len(records(judgments())) >= 2, "2 cached judgments",
                   lambda: len(records(judgments())))
        done, before = done_stages(results, RUN), cache_snapshot(results)
        assert_skipped(harness.run(*run), done)
        assert_caches_whole(results, before)
        cases["judging"].recomputed = answered_twice(server)  # replies in flight at the kill
        assert cases["judging"].recomputed <= JUDGE_CONCURRENCY

        # the flaky judge: rerun the judge stages until every judgment succeeded; each pass asks only for failures
        passes, reused = [], len(records(judgments()))
        while (failures := judge_failures(results, RUN)) and len(passes) < MAX_JUDGE_PASSES:
            before, calls = cache_snapshot(results), len(server.requests)
            leg = harness.run(*run, "--force", "judge/alpaca_eval", "--force", "judge/mt_bench")
            asked = [int(n) for n in re.findall(r"judging (\d+) requests with", leg.output())]
            assert sum(asked) == failures, leg.output()[-3000:]
            assert_caches_whole(results, before)
            passes.append((failures, len(server.requests) - calls))
        assert judge_failures(results, RUN) == 0, passes
        behaviours: dict[str, int] = {}
        for request in list(server.requests):
            behaviours[request.behaviour] = behaviours.get(request.behaviour, 0) + 1
        cases["flaky judge"] = Case("judge failing 30% / timing out 10%", reused=reused)

        # report rendering
        reports = root / "reports"
        render = ("report", RUN, "--results", results, "--reports", reports, "--name", "faults")
        leg = harness.start(*render)
        wait_until(leg, lambda: any((reports / "faults" / "figures").glob("*")), "a rendered figure")
        exit_s, orphans = harness.kill(leg)
        assert not (reports / "faults" / "report.html").exists(), "the report finished before the kill"
        harness.run(*render)
        cases["report"] = Case("report rendering", reused=0, recomputed=1, exit_s=exit_s, orphans=orphans)
    return SeftChain(results, cases, passes, behaviours, reports / "faults")


class Disk:
    """A small disk for the results at ``folder``: a tmpfs of DISK_SIZE in a private mount namespace held by a
    sleeping process (harness commands enter it with ``prefix``; this process sees it at ``path``, through
    /proc/<pid>/root), or, where no namespace can be made, the folder itself, whose writes through harness.io
    fail with ENOSPC while a flag file exists (``environment`` installs that)."""

    def __init__(self, folder: Path):
        folder.mkdir()
        self.folder = folder
        self.holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             f"mount -t tmpfs -o size={DISK_SIZE} tmpfs {folder} && echo mounted && exec sleep 3600"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.tmpfs = self.holder.stdout.readline().strip() == "mounted"
        self.path = Path(f"/proc/{self.holder.pid}/root{folder}") if self.tmpfs else folder
        self.prefix = ("nsenter", "-t", str(self.holder.pid), "-U", "-m", "--preserve-credentials") if self.tmpfs else ()
        self.flag = folder.with_name(folder.name + "-full")
        self.hook = folder.with_name(folder.name + "-hook")
        if not self.tmpfs:
            self.hook.mkdir()
            (self.hook / "sitecustomize.py").write_text(ENOSPC_HOOK)

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """Return ``env`` for harness processes writing to this disk (with the ENOSPC hook where it is injected)."""
        if self.tmpfs:
            return env
        return {**env, "HARNESS_TEST_DISK_FULL": str(self.flag),
                "PYTHONPATH": os.pathsep.join(p for p in (str(self.hook), env.get("PYTHONPATH")) if p)}

    def seen(self, path: str) -> str:
        """Return where this process sees ``path``, a path on the disk as the harness wrote it."""
        return str(self.path / Path(path).relative_to(self.folder))

    def fill(self) -> None:
        """Make the next write fail with ENOSPC."""
        if not self.tmpfs:
            self.flag.touch()
            return
        with open(self.path / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 2**20)
                    filler.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    def free(self) -> None:
        """Give the space back."""
        (self.path / "filler").unlink(missing_ok=True)
        self.flag.unlink(missing_ok=True)

    def close(self) -> None:
        """Unmount (the namespace ends with its holder)."""
        self.holder.kill()
        self.holder.wait()


ENOSPC_HOOK = '''
import errno, os
from pathlib import Path
import harness.io as io

def _full(write):
    def guarded(path, *args, **kwargs):
        if Path(os.environ["HARNESS_TEST_DISK_FULL"]).exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write(path, *args, **kwargs)
    return guarded

io.append_jsonl, io.atomic_write_text = _full(io.append_jsonl), _full(io.atomic_write_text)
'''


@dataclass
class SftRuns:
    """An SFT run on a small disk: killed while training, out of space while generating, and rerun after
    every cache lost half its last line."""

    disk: Disk
    results: Path
    disk_full: Leg
    cached: int
    truncated: list[Path]
    after_truncation: Leg
    judge_calls: int
    cases: dict[str, Case]


@pytest.fixture(scope="module")
def sft_runs(experiment_factory, harness_env: dict[str, str], fake_judge_server, tmp_path_factory) -> SftRuns:
    root = tmp_path_factory.mktemp("fault-sft")
    disk = Disk(root / "disk")
    try:
        results = disk.path / "results"  # what the harness writes to disk.folder / "results", as this process sees it
        config = experiment_factory(root, "sft.yaml", data=TINY_TRAINING["data"], train=TRAIN,
                                    generation={"max_new_tokens": 16, "engine": {"batch_size": 1}})
        harness = Harness(disk.environment(harness_env), root, "sft", prefix=disk.prefix)
        run = ("run", "--method", "sft", "--config", config, "--results", disk.folder / "results", "--run-id", RUN)

        # training on one process, killed after a checkpoint
        leg = harness.start(*run)
        wait_until(leg, checkpointed(results, "train/sft", 1), "an SFT checkpoint")
        exit_s, orphans = harness.kill(leg)
        stage_dir, killed_at = killed_at_checkpoint(results, "train/sft", 1)
        assert killed_at < TRAIN["max_steps"]

        # the rerun resumes the training; the disk fills once it has cached generations
        disk_full = harness.start(*run)
        wait_until(disk_full, model_cache_ready(results, RUN, "policy", 2), "2 cached generations")
        with harness.paused():  # filling takes longer than the tiny model's generation: fill before it goes on
            disk.fill()
        disk_full.proc.wait(timeout=300)
        cached = len(records(model_cache(results, RUN, "policy")))
        disk.free()
        rerun = harness.run(*run)
        training = replace(check_resumed_training(stage_dir, killed_at, root, disk.seen), exit_s=exit_s, orphans=orphans)

        before, calls = cache_snapshot(results), len(fake_judge_server.requests)
        for path in before:  # cut the last line half-way, as a process killed mid-append leaves it
            raw = path.read_bytes()
            last = raw.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            path.write_bytes(raw[:len(raw) - len(last) - 1] + last[:len(last) // 2])
        after = harness.run(*run, "--force", "generate/alpaca_eval", "--force", "generate/mt_bench")
        found = [(int(c), int(g)) for _, c, g in DONE_LINE.findall(after.output())]
        cases = {"training": training,
                 "disk": Case("disk full during generation" + ("" if disk.tmpfs else " (injected ENOSPC)"),
                              reused=item_counts(rerun.output())[0]),
                 "truncated": Case("truncated last line in every cache", reused=sum(c for c, _ in found),
                                   recomputed=len(before))}
        yield SftRuns(disk, results, disk_full, cached, sorted(before), after, len(fake_judge_server.requests) - calls, cases)
    finally:
        disk.close()


def test_killed_training_resumes_and_ends_like_an_uninterrupted_run(sft_runs: SftRuns, seft_chain: SeftChain) -> None:
    for case in (sft_runs.cases["training"], seft_chain.cases["training, 2 processes"]):
        assert case.reused >= 2 and case.orphans == 0, case
        assert case.exit_s < RANKS_EXIT_S, case  # both ranks (and launcher, supervisor) gone within seconds


def test_seft_run_killed_in_every_stage_kind_finishes_like_a_whole_one(seft_chain: SeftChain, harness_cli) -> None:
    run = read_json(seft_chain.results / RUN / "run.json")
    assert run["status"] == "done" and set(run["metrics"]) == {"alpaca_eval", "mt_bench"}
    for name in ("seft/reviser", "seft/round-1"):  # every training stage of the SEFT run ran on 2 processes
        summary = read_json(seft_chain.results / RUN / name / "manifest.json")["summary"]
        assert summary["processes"] == 2 and summary["device"] == "cpu x 2"
    shown = harness_cli("show", RUN, "--results", seft_chain.results)
    assert shown.returncode == 0 and "global batch 4 = 2 per device x 2 processes x 1 accumulation" in shown.stdout
    rounds = read_json(seft_chain.results / RUN / "seft/round-1-targets" / "round_stats.json")
    assert rounds["candidates"] == {"internal": SEFT["prompts_per_round"] * SEFT["samples_per_prompt"]}
    for name in ("SEFT sampling", "SEFT revision", "generation", "judging", "report"):
        case = seft_chain.cases[name]
        assert case.orphans == 0 and case.reused >= (0 if name == "report" else 2), case
    assert_store_is_whole(seft_chain.results)


def test_flaky_judge_reruns_ask_only_for_what_failed(seft_chain: SeftChain) -> None:
    passes, behaviours = seft_chain.judge_passes, seft_chain.requests_by_behaviour
    assert passes and behaviours["500"] > 0 and behaviours["slow"] > 0  # the server did fail and time out
    assert behaviours["ok"] + behaviours["500"] + behaviours["slow"] == sum(behaviours.values())


def test_interrupted_report_renders_whole(seft_chain: SeftChain) -> None:
    report = seft_chain.report
    assert (report / "report.md").read_text().strip()
    assert (report / "report.html").read_text().rstrip().endswith("</html>")
    figures = list((report / "figures").iterdir())
    assert figures
    for figure in figures:
        if figure.suffix == ".png":
            assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.read_bytes().endswith(b"IEND\xaeB`\x82")
        elif figure.suffix == ".svg":
            ET.parse(figure)


def test_full_disk_stops_with_one_line_and_the_rerun_reuses_what_was_cached(sft_runs: SftRuns) -> None:
    failed = sft_runs.disk_full
    assert failed.proc.returncode == EXIT_RUNTIME, failed.output()[-3000:]
    lines = [line for line in failed.output().splitlines() if line.strip()]
    assert "Traceback" not in failed.output() and lines[-1].startswith("error: no space left on the device")
    assert sft_runs.cached >= 2 and sft_runs.cases["disk"].reused == sft_runs.cached


def test_truncated_cache_lines_are_recomputed_once_and_repaired(sft_runs: SftRuns) -> None:
    generations = [p for p in sft_runs.truncated if p.parent.name == "generations"]
    judgments = [p for p in sft_runs.truncated if p.parent.name == "judgments"]
    assert len(generations) == 1 and len(judgments) == 1, sft_runs.truncated
    found = [(int(c), int(g)) for _, c, g in DONE_LINE.findall(sft_runs.after_truncation.output())]
    assert sum(g for _, g in found) == 1  # the one generation whose line was cut
    assert sft_runs.judge_calls == 1      # the one judgment whose line was cut
    assert_caches_whole(sft_runs.results)
    assert_store_is_whole(sft_runs.results)


def test_fault_schedule_counts(sft_runs: SftRuns, seft_chain: SeftChain) -> None:
    """Print the counts for the README's reliability section (run with -s to see them)."""
    tally = [*sft_runs.cases.values(), *seft_chain.cases.values()]
    names = [case.name for case in tally]
    assert len(names) == len(set(names)) == 10, names
    width = max(map(len, names))
    print(f"\n{'case':<{width}}  reused  recomputed  orphans  exit_s")
    for case in tally:
        print(f"{case.name:<{width}}  {case.reused:>6}  {case.recomputed:>10}  {case.orphans:>7}  {case.exit_s if case.exit_s is not None else '-'}")
    print(f"cases {len(tally)}, reused {sum(c.reused for c in tally)}, recomputed {sum(c.recomputed for c in tally)}, "
          f"orphans {sum(c.orphans for c in tally)}")
    assert sum(c.orphans for c in tally) == 0
