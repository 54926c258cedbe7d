"""dqt_hw: bit-exact DQT arithmetic, generated hardware and cost models.

- ``dqt_hw.spec``:   formats, rounding and scalar integer primitives (the contract).
- ``dqt_hw.model``:  Numba kernels behind validating wrappers (the golden reference).
- ``dqt_hw.golden``: golden-vector sets (manifest + .npy + $readmemh hex).
- ``dqt_hw.hw``:     Amaranth generators of the hardware.
"""

from .spec import CONTRACT_VERSION

__version__ = "0.1.0"

__all__ = ["CONTRACT_VERSION", "__version__"]
