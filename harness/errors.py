"""The one exception type users see: printed as a single line, non-zero exit."""


class HarnessError(Exception):
    """A user-facing error (bad input, missing artefact, offline hub).

    The CLI prints ``error: <message>`` on one line and exits with status 2; the
    message should name what is wrong and how to fix it.
    """
