"""Build a report from runs and write it as Markdown and self-contained HTML (Jinja2, autoescaped)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from harness.benchmarks.base import all_benchmarks
from harness.errors import HarnessError
from harness.io import atomic_write_text
from harness.report_sections import Block, ReportContext, Section, ordered_sections
from harness.reports.collect import RunData, group_runs
from harness.store import RUN_ID_PATTERN, now_iso


@dataclass
class Report:
    """A built report: its title, the runs it read, and each section with what it produced."""

    title: str
    runs: list[RunData]
    parts: list[tuple[Section, Block]]
    created: str


def build_report(runs: list[RunData], out_dir: Path, *, title: str = "SEFT benchmark report",
                 sections: list[str] | None = None) -> Report:
    """Return the report of ``runs`` (figures written under ``out_dir``); sections default to all registered."""
    ctx = ReportContext(runs=runs, groups=group_runs(runs), benchmarks=all_benchmarks(), out_dir=Path(out_dir))
    chosen = [s for s in ordered_sections() if sections is None or s.name in sections]
    return Report(title, runs, [(s, s.build(ctx)) for s in chosen], now_iso())


def _environment(autoescape: bool) -> Environment:
    env = Environment(loader=PackageLoader("harness.reports", "templates"), trim_blocks=True, lstrip_blocks=True,
                      autoescape=autoescape, keep_trailing_newline=True)
    env.filters["md_table"] = markdown_table
    env.filters["md_text"] = _markdown_text
    return env


def _markdown_text(value: object) -> str:
    """Return text safe inside Markdown: no raw HTML, no table breaks, one line."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """Return a GitHub-flavoured Markdown table of ``frame`` with every cell escaped.

    Hand-written: pandas' to_markdown needs the optional tabulate package, and cells need
    Markdown escaping (pipes, raw HTML) that tabulate does not do.
    """
    header = "| " + " | ".join(_markdown_text(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_markdown_text(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _html_table(frame: pd.DataFrame) -> Markup:
    """Return pandas' HTML for ``frame`` (cells escaped by pandas) as markup for the template."""
    return Markup(frame.to_html(escape=True, index=False, border=0, classes="data", na_rep="-"))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html under ``out_dir`` (figures are already in out_dir/figures); return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = {"report": report, "runs": report.runs}
    md = _environment(False).get_template("report.md.j2").render(
        **common, relative=lambda p: Path(p).relative_to(out_dir).as_posix())
    html = _environment(True).get_template("report.html.j2").render(
        **common, table_html=_html_table, data_uri=_data_uri, relative=lambda p: Path(p).relative_to(out_dir).as_posix())
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md_path, md)
    atomic_write_text(html_path, html)
    return md_path, html_path


def report_dir(root: Path, name: str) -> Path:
    """Return ``root/name`` if ``name`` is a safe folder name, else raise HarnessError."""
    if not RUN_ID_PATTERN.match(name) or ".." in name:
        raise HarnessError(f"invalid report name '{name}': use letters, digits, '.', '_' and '-'")
    return Path(root) / name


def render_runs(runs: list[RunData], root: Path, name: str, *, sections: list[str] | None = None) -> tuple[Path, Path]:
    """Build and write the report of ``runs`` as root/name/report.{md,html}; return both paths."""
    out_dir = report_dir(root, name)
    return write_report(build_report(runs, out_dir, sections=sections), out_dir)
