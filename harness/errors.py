"""The error contract of every command (sweep and subcommands), in one place.

A bad input (a config value, an argument, a results path, a file in a results folder) gets one
line on stderr that names the input and says what was expected, and exit code 3; nothing runs
after it. Anything else is a bug: one line and exit code 4. ``--debug`` (or ``HARNESS_DEBUG=1``)
shows the traceback instead. The other exit codes say how the work came out:

- 0: done: every point ran, every claim got a verdict, no regression;
- 1: done, with a failure in the results: a point failed (its row holds the error), ``compare``
  found a regression, a claim got no verdict;
- 2: ``compare`` only: no regression, but some verdicts are inconclusive;
- 3: bad input: one line naming it and what was expected;
- 4: internal error (a bug): one line; rerun with ``--debug`` for the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

EXIT_OK, EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3, 4
# What a user can cause with a bad value, a bad path or a bad file: reported as bad input. KeyError
# (an unknown name) is a LookupError; FileNotFoundError and PermissionError are OSErrors.
BAD_INPUT = (ValueError, LookupError, OSError, OmegaConfBaseException, HydraException)
# Lines of OmegaConf/Hydra messages that repeat what the first line said, or point at internals.
_NOISE = ("full_key:", "reference_type=", "object_type=", "Set the environment variable HYDRA_FULL_ERROR",
          "To append to your config use", "To append to your default list use")


class UsageError(ValueError):
    """A bad command-line argument of a subcommand (argparse's own errors go through here)."""


def debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """(debug?, argv without ``--debug``): ``--debug`` anywhere, or ``HARNESS_DEBUG=1``."""
    env = os.environ.get("HARNESS_DEBUG", "").lower() in ("1", "true", "yes", "on")
    return env or "--debug" in argv, [a for a in argv if a != "--debug"]


def one_line(exc: BaseException) -> str:
    """The exception's message on one line: OmegaConf's key/type lines and Hydra's search path
    dropped, a list of options (one per line) joined with commas, the cause appended, and for an
    unknown key of a dataclass config, its valid keys."""
    msg = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    parts: list[str] = []
    for text in (str(msg), str(cause) if cause is not None and str(cause) not in str(msg) else ""):
        out: list[str] = []
        listing = False
        for ln in (ln.strip() for ln in text.splitlines()):
            if ln.startswith("Config search path"):
                break
            if not ln or ln.startswith(_NOISE):
                continue
            if out and " " not in ln and (listing or out[-1].endswith(":")):
                out[-1] += (", " if listing else " ") + ln
                listing = True
            else:
                listing = False
                out.append(ln.rstrip("."))
        parts += out
    keys = _valid_keys(cause) or _valid_keys(exc)
    if keys:
        parts.append(f"valid keys: {keys}")
    return "; ".join(parts).replace("\t", " ") or type(exc).__name__


def _valid_keys(exc: BaseException | None) -> str | None:
    """The fields of the dataclass config an unknown key was looked up in (OmegaConf records it)."""
    import dataclasses

    if not isinstance(exc, OmegaConfBaseException) or not isinstance(exc, (KeyError, AttributeError)):
        return None  # only an unknown key: a bad value of a known key lists no keys
    obj, parent = getattr(exc, "object_type", None), getattr(exc, "parent_node", None)
    if isinstance(obj, type) and dataclasses.is_dataclass(obj):
        return ", ".join(f.name for f in dataclasses.fields(obj))
    if hasattr(parent, "keys"):  # a plain YAML node (model, hardware): the keys it has
        return ", ".join(str(k) for k in parent.keys()) or None
    return None


def report_error(prog: str, exc: BaseException) -> int:
    """Print the one line for ``exc`` and return its exit code (3 bad input, 4 internal)."""
    if isinstance(exc, BAD_INPUT):
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    print(f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)} (a bug; rerun with --debug for the "
          "traceback)", file=sys.stderr, flush=True)
    return EXIT_INTERNAL


def guarded(prog: str, fn: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a command under the contract: its exit code, or the one line and 3/4 on an exception."""
    debug, argv = debug_requested(argv)
    if debug:
        return fn(argv)
    try:
        return fn(argv)
    except Exception as exc:  # noqa: BLE001  (the contract: one line, never a traceback without --debug)
        return report_error(prog, exc)
