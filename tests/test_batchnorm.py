"""BatchNorm's closed-form backward equals the derivative of its plain formula."""

import jax
import jax.numpy as jnp
import numpy as np

from asf_jax.models.layers import batch_norm_train


def plain_batch_norm(x, scale, bias, epsilon):
    mean = x.mean((0, 1, 2))
    var = jnp.square(x - mean).mean((0, 1, 2))
    return (x - mean) * jax.lax.rsqrt(var + epsilon) * scale + bias, mean, var


def test_gradients_match_autodiff_including_the_statistics():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((3, 5, 4, 6)) * 2 + 1, jnp.float32)
    scale = jnp.asarray(rng.uniform(0.5, 1.5, 6), jnp.float32)
    bias = jnp.asarray(rng.standard_normal(6), jnp.float32)
    weights = [jnp.asarray(rng.standard_normal(shape), jnp.float32)
               for shape in (x.shape, (6,), (6,))]

    def loss(norm, x, scale, bias):  # every output gets a different cotangent
        outputs = norm(x, scale, bias, 1e-5)
        return sum(jnp.sum(jnp.sin(out) * w) for out, w in zip(outputs, weights, strict=True))

    ours = jax.grad(lambda *a: loss(batch_norm_train, *a), (0, 1, 2))(x, scale, bias)
    ref = jax.grad(lambda *a: loss(plain_batch_norm, *a), (0, 1, 2))(x, scale, bias)
    for got, want in zip(ours, ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for got, want in zip(batch_norm_train(x, scale, bias, 1e-5),
                         plain_batch_norm(x, scale, bias, 1e-5), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bfloat16_input_gives_bfloat16_output_and_gradient():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 3, 3, 4)), jnp.bfloat16)
    ones = jnp.ones((4,), jnp.float32)
    y, mean, _ = batch_norm_train(x, ones, ones, 1e-5)
    assert y.dtype == jnp.bfloat16 and mean.dtype == jnp.float32
    dx = jax.grad(lambda v: jnp.sum(batch_norm_train(v, ones, ones, 1e-5)[0].astype(
        jnp.float32) ** 2))(x)
    assert dx.dtype == jnp.bfloat16
