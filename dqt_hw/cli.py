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
    "dqt_hw.net.cli",
    "dqt_hw.cost.cli",
    "dqt_hw.sweep.cli",
    "dqt_hw.sim_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dqt-hw",
        description="Bit-exact DQT arithmetic, generated hardware and cost models.",
    )
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, ImportError) as e:  # ImportError: an optional package
        print(f"dqt-hw {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
