"""The CPU convolution with a GEMM kernel gradient equals XLA's convolution and its gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from asf_jax.models.conv import conv_general_dilated

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("kernel_hw, strides, channels_in", [
    ((1, 3), (1, 1), 3), ((1, 3), (1, 2), 3), ((1, 1), (1, 2), 3), ((3, 1), (1, 1), 3),
    ((5, 1), (1, 1), 3), ((7, 7), (2, 2), 3), ((5, 7), (2, 2), 3), ((4, 3), (3, 2), 3),
    ((3, 3), (1, 1), 3), ((2, 3), (1, 1), 3), ((1, 1), (1, 1), 3), ((5, 7), (2, 2), 1)])
def test_value_and_both_gradients_match_xla(kernel_hw, strides, channels_in):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 17, 12, channels_in)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal(kernel_hw + (channels_in, 5)), jnp.float32)
    padding = tuple((k // 2, k // 2) for k in kernel_hw)

    def loss(conv, x, kernel):
        out = conv(x, kernel, strides, padding, dimension_numbers=NHWC)
        return jnp.sum(jnp.sin(out))  # a cotangent that differs at every output position

    ours = jax.jit(jax.value_and_grad(lambda x, k: loss(conv_general_dilated, x, k), (0, 1)))
    xla = jax.jit(jax.value_and_grad(lambda x, k: loss(lax.conv_general_dilated, x, k), (0, 1)))
    (value, (dx, dk)), (ref_value, (ref_dx, ref_dk)) = ours(x, kernel), xla(x, kernel)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dk, ref_dk, rtol=1e-5, atol=1e-4)


def test_other_convolutions_are_left_to_xla():
    """String padding and dilation take lax's own path (and still give the same values)."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((1, 9, 9, 2)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((3, 3, 2, 4)), jnp.float32)
    for kwargs in ({"padding": "SAME"},
                   {"padding": ((2, 2), (2, 2)), "rhs_dilation": (2, 2)}):
        ours = conv_general_dilated(x, kernel, (1, 1), dimension_numbers=NHWC, **kwargs)
        ref = lax.conv_general_dilated(x, kernel, (1, 1), dimension_numbers=NHWC, **kwargs)
        np.testing.assert_array_equal(ours, ref)


def test_bfloat16_kernel_gradient_accumulates_in_float32():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((4, 64, 32, 16)), jnp.bfloat16)
    kernel = jnp.asarray(rng.standard_normal((3, 1, 16, 8)), jnp.bfloat16)

    def kernel_grad(conv, x, kernel):
        return jax.grad(lambda k: jnp.sum(conv(x, k, (1, 1), ((1, 1), (0, 0)),
                                               dimension_numbers=NHWC).astype(jnp.float32)
                                          ** 2))(kernel)

    ours = kernel_grad(conv_general_dilated, x, kernel)
    exact = kernel_grad(lax.conv_general_dilated, x.astype(jnp.float32), kernel.astype(jnp.float32))
    assert ours.dtype == jnp.bfloat16
    dx = jax.grad(lambda v: jnp.sum(conv_general_dilated(v, kernel, (1, 1), ((1, 1), (0, 0)),
                                                         dimension_numbers=NHWC)))(x)
    assert dx.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(ours, np.float32), exact, rtol=2e-2,
                               atol=2e-2 * float(jnp.abs(exact).max()))
