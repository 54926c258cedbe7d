"""``python -m dqt_hw.train``: the same as ``dqt-hw train`` (options: ``dqt_hw.train.cli``)."""

import argparse
import sys

from .cli import add_train_args, run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dqt_hw.train",
                                description="DQT quantization-aware training and export")
    add_train_args(p)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return run(p.parse_args(argv), argv)
    except ValueError as e:
        p.error(str(e))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
