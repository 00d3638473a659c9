"""What every ``python -m dinotools.*`` command shares: the parser, ``KEY=VALUE`` options, logging, and
the ONE path from an exception to a one-line message and an exit code (``run_command``).

Exit codes (every command): 0 done; 2 bad input or a known failure (one ``error: ...`` line per
problem, never a traceback); 128 + signal number when stopped by Ctrl-C (130), SIGTERM (143) or
SIGHUP (129), with a line saying what was kept and how to continue. ``batch`` adds 3 (some videos
failed). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from dinotools.commands.signals import terminate_as_interrupt
from dinotools.errors import Interrupted, UserError
from dinotools.registry import ComponentError

KV_HELP = ("VALUE: an int, a float, true/false (bool), none (None), else the text; '-' in KEY is '_'")


def path_arg(text: str):
    """A path option's value: ``""`` stays ``""`` (refused with a one-line error; ``Path("")`` would be ``.``)."""
    return Path(text) if text else ""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line like every other dinotools error (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default after its help text (unless the text already says it, or there is none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        none = action.default is None or action.default is False or action.default == [] \
            or action.default is argparse.SUPPRESS
        if "default" in text or not action.option_strings or none:
            return text
        return f"{text} (default: %(default)s)"


def setup_logging(verbose: int) -> None:
    """-v info, -vv debug; warnings otherwise (shared by every dinotools command line)."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


def parse_kv(items: List[str], flag: str = "--init-arg") -> Dict[str, Any]:
    """``KEY=VALUE`` options -> a dict, every command's one reading (``KV_HELP``; values as
    ``dinotools.eval.grid.parse_value``: ``5`` -> 5, ``0.2`` -> 0.2, ``true``/``false`` -> bool,
    ``none`` -> None, else the text). ``flag`` names the option in the error of an item without ``=``."""
    from dinotools.eval.grid import parse_value  # here: dinotools.eval loads scoring code no parser needs

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = parse_value(value)
    return out


def run_command(body: Callable[[], int], *, describe: Optional[Callable[[BaseException], Optional[str]]] = None,
                interrupted: Optional[Callable[[KeyboardInterrupt], str]] = None,
                notes: Optional[List[str]] = None) -> int:
    """``body()`` with SIGTERM/SIGHUP as Ctrl-C, every known failure one line on stderr and its exit code.

    ``UserError``/``ComponentError`` (a ``BatchInputError``: one line per problem) -> 2; a
    ``KeyboardInterrupt`` -> 128 + signal, printing ``interrupted(exc)`` or the ``Interrupted``
    message; any other exception ``describe(exc)`` words (e.g. ``runs.settings.describe_failure``)
    -> 2; the rest propagates (a bug: its traceback is the report). ``notes``: sentences a run
    appends to the error line (e.g. where its finished work was saved).
    """
    from dinotools.batch.sources import BatchInputError

    tail = lambda: "".join(notes or [])  # noqa: E731 - read when printing: the run fills it as it stops
    with terminate_as_interrupt():  # SIGTERM/SIGHUP: as Ctrl-C (the frame being written is finished)
        try:
            return body()
        except BatchInputError as exc:
            for line in exc.lines():
                print(f"error: {line}", file=sys.stderr)
            return 2
        except (UserError, ComponentError) as exc:
            print(f"error: {exc}{tail()}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            if interrupted is not None:
                message = interrupted(exc)
            else:
                message = exc.message if isinstance(exc, Interrupted) else "interrupted by Ctrl-C"
            print(f"{message}{tail()}", file=sys.stderr)
            return 128 + getattr(exc, "signum", 2)
        except Exception as exc:  # noqa: BLE001 - only known kinds are turned into one line
            message = describe(exc) if describe is not None else None
            if message is None:
                raise
            print(f"error: {message}{tail()}", file=sys.stderr)
            return 2
