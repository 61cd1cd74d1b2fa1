"""A fixed simplex Equiangular Tight Frame (ETF): K class prototypes as far apart as K unit vectors can be.

Neural-collapse theory (Papyan et al., 2020) says the last-layer classifier of a well-trained
network converges to a simplex ETF; CoFInAl (Zhou et al., IJCAI 2024, Definition 1) fixes its
sub-grade prototypes to one instead of learning them::

    E = sqrt(K / (K - 1)) U (I_K - 1_K 1_K^T / K),    U in R^{d x K},  U^T U = I_K

so every column has unit length and every pair has inner product ``-1 / (K - 1)``. ``U`` is the
Q factor of a QR decomposition of a seeded Gaussian matrix: the frame is fixed by its seed,
never trained, and kept as a buffer so it travels in checkpoints.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aqakit.errors import ConfigError


def simplex_etf(dim: int, n_classes: int, seed: int = 0) -> Tensor:
    """(dim, n_classes) float32 simplex ETF; the same ``seed`` always gives the same frame.

    Needs ``n_classes >= 2`` and ``dim >= n_classes`` (``U`` has orthonormal columns).
    Computed in float64, so the properties hold to float32 precision.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ConfigError(f"a simplex ETF needs at least 2 classes, got {n_classes!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < n_classes:
        raise ConfigError(f"a simplex ETF of {n_classes} classes needs dimension >= {n_classes}, got {dim!r}")
    generator = torch.Generator().manual_seed(int(seed))
    gaussian = torch.randn(dim, n_classes, generator=generator, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(gaussian)  # (d, K), U^T U = I
    centring = torch.eye(n_classes, dtype=torch.float64) - 1.0 / n_classes  # I - 11^T / K
    return (math.sqrt(n_classes / (n_classes - 1)) * rotation @ centring).float()


class SimplexETF(nn.Module):
    """A non-learnable classifier over a fixed simplex ETF: ``logits = features @ E``.

    ``vectors`` (dim, K) is a registered buffer (saved in ``state_dict``, moved by ``.to()``,
    never returned by ``parameters()``).
    """

    vectors: Tensor

    def __init__(self, dim: int, n_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("vectors", simplex_etf(dim, n_classes, seed))

    @property
    def n_classes(self) -> int:
        return self.vectors.shape[1]

    def forward(self, features: Tensor) -> Tensor:
        """features (..., dim) -> inner products with every prototype (..., K)."""
        return features @ self.vectors
