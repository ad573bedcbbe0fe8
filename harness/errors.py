"""The exceptions users see, printed as a single line, and the exit status of each class.

Exit statuses of the `harness` command (README, "Exit codes"; `harness --help` repeats them):

    0    success
    1    an unexpected error: a bug, reported with Python's traceback
    2    usage error: an unknown option or command, a value outside an option's choices (click's)
    3    bad input or config: a malformed or unknown preset/config key, a missing file, model or dataset
    4    runtime failure: a step failed while running (training child, judge server, engine)
    5    judge budget reached (--max-usd / eval.max_usd): finished work is kept, rerun with a larger budget
    130  interrupted (Ctrl-C / SIGINT): finished work is kept, rerun the same command to resume
"""

EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_RUNTIME = 4
EXIT_BUDGET = 5
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """A user-facing error: bad input or config, a missing artefact, an offline hub (exit status 3).

    The CLI prints ``error: <message>`` on one line and exits with the class's ``exit_code``;
    the message should name what is wrong and how to fix it.
    """

    exit_code = EXIT_BAD_INPUT


class RuntimeFailure(HarnessError):
    """A step that failed while running for a reason other than its input: a training child or judge server
    that exited, an engine that failed (exit status 4). The message says where its log is."""

    exit_code = EXIT_RUNTIME
