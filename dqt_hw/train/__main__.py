"""``python -m dqt_hw.train``: the same as ``dqt-hw train``."""

import argparse
import sys

from ..net.cli import _train, add_train_args


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dqt_hw.train",
                                description="DQT quantization-aware training and export")
    add_train_args(p)
    return _train(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
