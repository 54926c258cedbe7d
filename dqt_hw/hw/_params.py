"""Construction helpers shared by the generators (the parameter rules themselves live in
:mod:`dqt_hw.design.rules`, read through :class:`dqt_hw.design.Design`)."""

from __future__ import annotations

import functools

__all__ = ["validated_init"]


def validated_init(init):
    """Decorate a component's ``__init__``: a constructor that refuses its parameters does
    not leave an "elaboratable created but never used" warning behind."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            self._MustUse__silence = True
            raise

    return wrapper
