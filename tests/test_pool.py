"""The CPU max-pool gradient: XLA's where maxima are unique, the first maximum on ties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from asf_jax.models.layers import max_pool_3x3


@pytest.mark.parametrize("shape", [(2, 9, 8, 3), (1, 6, 7, 2)])
def test_value_and_gradient_match_xla(shape):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    cotangent = jnp.asarray(rng.standard_normal((shape[0], (shape[1] + 1) // 2,
                                                 (shape[2] + 1) // 2, shape[3])), jnp.float32)

    def xla_pool(v):
        return nnx.max_pool(v, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

    ours, ours_vjp = jax.vjp(max_pool_3x3, x)
    ref, ref_vjp = jax.vjp(xla_pool, x)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(ours_vjp(cotangent)[0], ref_vjp(cotangent)[0], rtol=1e-6,
                               atol=1e-6)  # overlapping windows sum in another order


def test_ties_send_the_gradient_to_the_first_maximum_only():
    """As PyTorch's MaxPool2d: on an all-zero input every window's first cell gets it."""
    dx = jax.grad(lambda v: max_pool_3x3(v).sum())(jnp.zeros((1, 3, 3, 1), jnp.float32))
    expected = np.zeros((3, 3), np.float32)
    expected[:2, :2] = 1  # windows of outputs (a, b) start at input (2a - 1, 2b - 1), clipped
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
