"""Building blocks with the reference's (PyTorch) semantics: convolutions, BatchNorm, pooling.

Layout is channels-last: (batch, time, freq, channels). Kernels are (time, freq).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from asf_jax.models.conv import conv_general_dilated

# He-normal with fan_out, untruncated: PyTorch's kaiming_normal_(mode="fan_out").
conv_init = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")
dense_init = jax.nn.initializers.normal(stddev=0.01)


class BatchNorm(nnx.Module):
    """BatchNorm as PyTorch computes it.

    Normalises with the biased batch variance but updates the running variance with the unbiased
    one; running = (1 - momentum) * running + momentum * batch. Statistics are taken over every
    axis but the last, so under `jax.jit` with a batch sharded over devices they are global
    (SyncBatchNorm). They are computed in float32 whatever the compute dtype. A BatchNorm
    `folded` into the convolution before it (models/fold.py) only adds its bias.
    """

    def __init__(self, num_features: int, *, zero_init: bool = False, momentum: float = 0.1,
                 epsilon: float = 1e-5):
        self.scale = nnx.Param(jnp.full((num_features,), 0.0 if zero_init else 1.0, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((num_features,), jnp.float32))
        self.mean = nnx.BatchStat(jnp.zeros((num_features,), jnp.float32))
        self.var = nnx.BatchStat(jnp.ones((num_features,), jnp.float32))
        self.momentum = momentum
        self.epsilon = epsilon
        self.use_running_average = False
        self.folded = False

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.folded:
            if not self.use_running_average:
                raise ValueError("this BatchNorm is folded into its convolution "
                                 "(fold_batchnorm): the model is for inference only")
            return (x.astype(jnp.float32) + self.bias[...]).astype(x.dtype)
        if self.use_running_average:
            inv = jax.lax.rsqrt(self.var[...] + self.epsilon) * self.scale[...]
            return ((x.astype(jnp.float32) - self.mean[...]) * inv
                    + self.bias[...]).astype(x.dtype)
        y, mean, var = batch_norm_train(x, self.scale[...], self.bias[...], self.epsilon)
        count = x.size // x.shape[-1]
        unbiased = var * (count / max(count - 1, 1))
        self.mean.set_value((1 - self.momentum) * self.mean[...] + self.momentum * mean)
        self.var.set_value((1 - self.momentum) * self.var[...] + self.momentum * unbiased)
        return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(normalised x, batch mean, biased batch variance) over every axis but the last.

    The backward pass is the closed form (two channel sums and one elementwise pass), which
    XLA:CPU runs ~1.5x faster than the derivative it builds through mean and variance (a w=64
    training step: 4% faster).
    """
    return _batch_norm_forward(x, scale, bias, epsilon)[0]


def _batch_norm_forward(x, scale, bias, epsilon):
    axes = tuple(range(x.ndim - 1))
    x32 = x.astype(jnp.float32)
    mean = x32.mean(axes)
    centred = x32 - mean
    var = jnp.square(centred).mean(axes)
    inv = jax.lax.rsqrt(var + epsilon)
    y = (centred * (inv * scale) + bias).astype(x.dtype)
    return (y, mean, var), (x, mean, inv, scale)


def _batch_norm_backward(epsilon, residuals, cotangents):
    x, mean, inv, scale = residuals
    dy, dmean, dvar = cotangents
    axes = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    normalised = (x.astype(jnp.float32) - mean) * inv
    dy = dy.astype(jnp.float32)
    dbias = dy.sum(axes)
    dscale = (dy * normalised).sum(axes)
    # Through the normalisation, then the (usually zero) cotangents of the returned statistics.
    dx = (scale * inv / count) * (count * dy - dbias - normalised * dscale)
    dx = dx + (dmean + 2 * dvar * normalised / inv) / count
    return dx.astype(x.dtype), dscale, dbias


batch_norm_train.defvjp(_batch_norm_forward, _batch_norm_backward)


class ConvBN(nnx.Module):
    """Bias-free convolution with explicit symmetric padding, then BatchNorm, then optional ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel: tuple[int, int], *,
                 strides: tuple[int, int] = (1, 1), relu: bool = True, zero_init_bn: bool = False,
                 dtype: jnp.dtype | None = None, rngs: nnx.Rngs):
        padding = tuple((k // 2, k // 2) for k in kernel)
        self.conv = nnx.Conv(in_features, out_features, kernel, strides=strides, padding=padding,
                             use_bias=False, kernel_init=conv_init, dtype=dtype, rngs=rngs,
                             conv_general_dilated=conv_general_dilated)
        self.bn = BatchNorm(out_features, zero_init=zero_init_bn)
        self.relu = relu

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.bn(self.conv(x))
        return nnx.relu(x) if self.relu else x


def stored(x: jax.Array) -> jax.Array:
    """`x` itself, computed once into memory (on the CPU).

    XLA:CPU copies cheap elementwise producers into every consumer. A residual block's output is
    such a chain (BatchNorm, add, ReLU) reaching back through every earlier block of the stage,
    so each of its uses (the next block, its residual, the ReLU mask and kernel gradients of the
    backward pass) recomputed the whole chain, 5% of the training step. XLA never duplicates a
    division, and dividing by a 1 that it cannot fold away (x's first value times 0, plus 1)
    leaves every finite value as it is.
    """
    if jax.default_backend() != "cpu":
        return x
    one = jax.lax.stop_gradient(x.reshape(-1)[0]) * 0 + 1
    return x / one


def max_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 max-pool, stride 2, padding 1 that acts as -inf (PyTorch MaxPool2d).

    On the CPU the gradient goes to the first maximum of each window, as PyTorch's does, through
    nine shifted masks: XLA:CPU's own derivative tracks window indices and took ~2% of a
    training step.
    """
    if jax.default_backend() != "cpu":
        return nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    return _max_pool_first_max_gradient(x)


_POOL_WINDOW, _POOL_STRIDES = (1, 3, 3, 1), (1, 2, 2, 1)
_POOL_PADDING = ((0, 0), (1, 1), (1, 1), (0, 0))


@jax.custom_vjp
def _max_pool_first_max_gradient(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, _POOL_WINDOW, _POOL_STRIDES,
                                 _POOL_PADDING)


def _max_pool_forward(x):
    y = _max_pool_first_max_gradient(x)
    return y, (x, y)


def _max_pool_backward(residuals, grad):
    x, y = residuals
    padded = jnp.pad(x, _POOL_PADDING, constant_values=-jnp.inf)
    _, out_h, out_w, _ = y.shape
    taken = jnp.zeros(y.shape, bool)
    dx = jnp.zeros(padded.shape, grad.dtype)
    for i in range(3):
        for j in range(3):
            window = padded[:, i:i + 2 * (out_h - 1) + 1:2, j:j + 2 * (out_w - 1) + 1:2]
            first = (window == y) & ~taken
            taken = taken | first
            spread = ((0, 0, 0), (i, padded.shape[1] - i - 2 * out_h + 1, 1),
                      (j, padded.shape[2] - j - 2 * out_w + 1, 1), (0, 0, 0))
            dx = dx + jax.lax.pad(jnp.where(first, grad, 0), jnp.zeros((), grad.dtype), spread)
    return (dx[:, 1:-1, 1:-1].astype(x.dtype),)


_max_pool_first_max_gradient.defvjp(_max_pool_forward, _max_pool_backward)
