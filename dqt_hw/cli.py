"""The ``dqt-hw`` command.

Each part of the toolkit registers its own sub-commands: a module listed in
``_COMMAND_MODULES`` has a ``register(subparsers)`` function that adds its parsers and
sets ``func`` on each (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

_COMMAND_MODULES = (
    "dqt_hw.golden.cli",
    "dqt_hw.demo",
    "dqt_hw.hw.cli",
    "dqt_hw.ip.cli",
    "dqt_hw.net.cli",
    "dqt_hw.cost.cli",
    "dqt_hw.cost.planes_report",
    "dqt_hw.cost.power_cli",
    "dqt_hw.sweep.cli",
    "dqt_hw.sim_cli",
    "dqt_hw.info_cli",
)


EXIT_FAILED = 1
"""Exit status of a run that failed: a verification mismatch, a stale check, the
environment (a file that cannot be written, an optional package missing)."""

EXIT_BAD_INPUT = 2
"""Exit status of refused input (a file, an option, a value), as for a usage error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dqt-hw",
        description="Bit-exact DQT arithmetic, generated hardware and cost models.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of its one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # a part not built (the module or its package missing) adds no command
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                continue
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command as typed (a file written may record it)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as e:  # bad input: refused, exit status 2 (as a usage error)
        if args.debug:
            raise
        print(f"dqt-hw {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ImportError) as e:  # the environment: a file system, an optional package
        if args.debug:
            raise
        print(f"dqt-hw {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
