"""Reports from the run store: tables, figures and statistics rendered as Markdown and HTML.

Everything here reads the store only (through ``collect``); nothing reruns training or judging.
Report sections register in ``section.SECTIONS`` where they are defined.
"""
