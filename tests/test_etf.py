"""Tests of the fixed simplex ETF (CoFInAl's sub-grade prototypes, Definition 1 of the paper)."""

from __future__ import annotations

import math

import pytest
import torch

from aqakit.errors import ConfigError
from aqakit.models.etf import SimplexETF, simplex_etf


@pytest.mark.parametrize("dim, n_classes", [(16, 10), (10, 10), (256, 10), (3, 2), (64, 37)])
def test_unit_columns_and_equal_pairwise_inner_products(dim: int, n_classes: int) -> None:
    etf = simplex_etf(dim, n_classes, seed=0)
    assert etf.shape == (dim, n_classes) and etf.dtype == torch.float32
    gram = etf.T @ etf  # (K, K)
    torch.testing.assert_close(gram.diagonal(), torch.ones(n_classes), atol=1e-6, rtol=0)
    off_diagonal = gram[~torch.eye(n_classes, dtype=torch.bool)]
    torch.testing.assert_close(off_diagonal, torch.full_like(off_diagonal, -1 / (n_classes - 1)), atol=1e-6, rtol=0)
    torch.testing.assert_close(etf.sum(dim=1), torch.zeros(dim), atol=1e-5, rtol=0)  # centred: E 1 = 0


def test_is_a_scaled_rotation_of_the_centring_matrix() -> None:
    """E = sqrt(K/(K-1)) U (I - 11^T/K) with U^T U = I: recover U on the span and check it."""
    n_classes = 6
    etf = simplex_etf(20, n_classes, seed=3).double()
    centring = torch.eye(n_classes, dtype=torch.float64) - 1.0 / n_classes
    scaled = etf / math.sqrt(n_classes / (n_classes - 1))  # U C
    # C is a projection (C C = C), so U C C = U C; U C has orthonormal rows of C's range inside:
    torch.testing.assert_close(scaled.T @ scaled, centring, atol=1e-6, rtol=0)
    torch.testing.assert_close(scaled @ centring, scaled, atol=1e-6, rtol=0)


def test_fixed_by_its_seed() -> None:
    torch.manual_seed(123)
    first = simplex_etf(32, 10, seed=7)
    torch.manual_seed(456)  # the global RNG plays no part
    torch.testing.assert_close(simplex_etf(32, 10, seed=7), first, atol=0, rtol=0)
    assert not torch.allclose(simplex_etf(32, 10, seed=8), first, atol=1e-3)


def test_module_keeps_the_frame_as_a_buffer_not_a_parameter() -> None:
    etf = SimplexETF(16, 5, seed=1)
    assert list(etf.parameters()) == []
    assert set(etf.state_dict()) == {"vectors"}
    torch.testing.assert_close(etf.state_dict()["vectors"], simplex_etf(16, 5, seed=1), atol=0, rtol=0)
    assert etf.n_classes == 5
    features = torch.randn(3, 4, 16)
    torch.testing.assert_close(etf(features), features @ etf.vectors)
    assert SimplexETF(16, 5, seed=1).double().vectors.dtype == torch.float64  # moves with the module

    other = SimplexETF(16, 5, seed=2)
    other.load_state_dict(etf.state_dict())  # a checkpoint restores the saved frame
    torch.testing.assert_close(other.vectors, etf.vectors, atol=0, rtol=0)


@pytest.mark.parametrize("dim, n_classes", [(8, 1), (4, 5), (0, 2), (8, True)])
def test_impossible_frames_are_config_errors(dim: int, n_classes: int) -> None:
    with pytest.raises(ConfigError, match="simplex ETF"):
        simplex_etf(dim, n_classes)
