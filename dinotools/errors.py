"""User-facing errors: the CLI prints these as one line (no traceback) and exits non-zero."""


class UserError(Exception):
    """A mistake in the user's input (a file, an argument): the message says what and how to fix it."""


class InputError(UserError, ValueError):
    """Bad input data: a missing/unreadable/corrupt file, wrong sizes, an empty mask."""


class WeightsError(UserError, FileNotFoundError):
    """Backbone weights missing, truncated, or of another variant/format."""


class ConfigError(UserError, ValueError):
    """An invalid parameter value (names the parameter and what it accepts)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP during a run, handled as Ctrl-C: ``message`` says what is written and
    how to continue; ``signum`` is the signal (the exit code is 128 + signum)."""

    def __init__(self, message: str = "interrupted", signum: int = 2) -> None:
        super().__init__(message)
        self.message, self.signum = message, signum
