"""A drop-in `lax.conv_general_dilated` whose backward pass is a few GEMMs on the CPU.

XLA:CPU computes a convolution's kernel gradient 2-70x slower than the convolution itself. Both
gradients of a conv are GEMMs over all batch positions, which XLA:CPU runs near the core's peak:
- unstrided convs: the output gradient, shifted once per kernel tap and stacked
  (`shifted_gradient`), times the kernel's transpose gives the input gradient, and the input
  times it gives the kernel gradient;
- strided convs: the input's strided patches (im2col) times the output gradient give the kernel
  gradient; a strided 1x1 conv's input gradient is one GEMM spread out by interior padding, other
  strided convs keep XLA's input gradient.
Both GEMM operands stay positions-major, as XLA's GEMM reads them without transposing. On GPU
and TPU the compiler's own kernels are used unchanged; the forward pass is XLA's everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")
Padding = tuple[tuple[int, int], ...]


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                         padding: Any, lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None, dimension_numbers: Any = None,
                         feature_group_count: int = 1, precision: Any = None,
                         **kwargs: Any) -> jax.Array:
    """`lax.conv_general_dilated`; plain 2-D NHWC/HWIO convs on the CPU get the GEMM backward."""
    plain = (jax.default_backend() == "cpu" and lhs.ndim == 4
             and not isinstance(padding, str)
             and all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
             and feature_group_count == 1 and precision is None
             and all(value is None for value in kwargs.values())
             and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
             == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC))
    if not plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        precision=precision, **kwargs)
    return conv_gemm_backward(lhs, rhs, tuple(window_strides),
                              tuple(tuple(int(p) for p in pair) for pair in padding))


def _conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], padding: Padding
          ) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_gemm_backward(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                       padding: Padding) -> jax.Array:
    """NHWC x HWIO convolution (explicit padding, no dilation) with a GEMM backward pass."""
    return _conv(x, kernel, strides, padding)


def _forward(x, kernel, strides, padding):
    return _conv(x, kernel, strides, padding), (x, kernel)


def _backward(strides, padding, residuals, grad):
    x, kernel = residuals
    if kernel.shape[2] == 1:  # a stem: im2col of one channel is a slow gather, XLA's is not
        _, vjp = jax.vjp(lambda v, k: _conv(v, k, strides, padding), x, kernel)
        return vjp(grad)
    if strides == (1, 1):
        return _unstrided_gradients(x, kernel, padding, grad)
    return (_strided_input_gradient(x, kernel, strides, padding, grad),
            kernel_gradient(x, grad, kernel, strides, padding))


conv_gemm_backward.defvjp(_forward, _backward)


def _unstrided_gradients(x: jax.Array, kernel: jax.Array, padding: Padding, grad: jax.Array
                         ) -> tuple[jax.Array, jax.Array]:
    """Both gradients of an unstrided conv from the tap-shifted output gradient."""
    kh, kw, channels_in, channels_out = kernel.shape
    shifted = shifted_gradient(grad, (kh, kw), padding, x.shape[1:3])  # (b, h, w, taps, out)
    dx = _input_gemm(shifted, kernel)
    dk = _positions_gemm(x, shifted).reshape(channels_in, kh * kw, channels_out)
    return dx.astype(x.dtype), dk.transpose(1, 0, 2).reshape(kernel.shape).astype(kernel.dtype)


def _strided_input_gradient(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                            padding: Padding, grad: jax.Array) -> jax.Array:
    """A strided 1x1 conv's input gradient is one GEMM spread out by interior zero padding;
    other strided convs keep XLA's."""
    if kernel.shape[:2] != (1, 1) or padding != ((0, 0), (0, 0)):
        _, input_vjp = jax.vjp(lambda v: _conv(v, kernel, strides, padding), x)
        return input_vjp(grad)[0]
    dx = _input_gemm(grad[..., None, :], kernel).astype(x.dtype)  # (b, out_h, out_w, in)
    (sh, sw), (_, h, w, _) = strides, x.shape
    return lax.pad(dx, jnp.zeros((), x.dtype),
                   ((0, 0, 0), (0, h - (dx.shape[1] - 1) * sh - 1, sh - 1),
                    (0, w - (dx.shape[2] - 1) * sw - 1, sw - 1), (0, 0, 0)))


def shifted_gradient(grad: jax.Array, kernel_hw: tuple[int, int], padding: Padding,
                     input_hw: tuple[int, int]) -> jax.Array:
    """The output gradient once per kernel tap of an unstrided conv: (b, h, w, taps, out) over
    the INPUT's positions, tap (i, j) at (y, x) holding grad[y - i + top, x - j + left] (zero
    outside). Both backward GEMMs of the conv read it."""
    kh, kw = kernel_hw
    if (kh, kw) == (1, 1) and padding == ((0, 0), (0, 0)):
        return grad[..., None, :]
    (top, bottom), (left, right) = padding
    h, w = input_hw
    padded = jnp.pad(grad, ((0, 0), (kh - 1 - top, kh - 1 - bottom),
                            (kw - 1 - left, kw - 1 - right), (0, 0)))
    return jnp.stack([padded[:, kh - 1 - i:kh - 1 - i + h, kw - 1 - j:kw - 1 - j + w]
                      for i in range(kh) for j in range(kw)], axis=3)


def kernel_gradient(x: jax.Array, grad: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                    padding: Padding) -> jax.Array:
    """d(loss)/d(kernel) (kh, kw, in, out) of a strided conv: the input's strided patches
    (im2col, one slice per kernel tap) times the output gradient, in one GEMM."""
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = padding
    padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    _, out_h, out_w, _ = grad.shape
    sh, sw = strides
    patches = jnp.stack([padded[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
                         for i in range(kh) for j in range(kw)], axis=3)  # (b, h, w, taps, in)
    return _positions_gemm(patches, grad).reshape(kernel.shape).astype(kernel.dtype)


def _positions_gemm(rows: jax.Array, columns: jax.Array) -> jax.Array:
    """(b, h, w, ...) x (b, h, w, ...) -> (prod(rows' tail), prod(columns' tail)): the sum over
    batch and positions, in float32. Both operands stay positions-major: XLA's GEMM reads them
    as they are (written as an einsum, XLA transposed the larger one first, at more than the
    GEMM's cost)."""
    positions = rows.shape[0] * rows.shape[1] * rows.shape[2]
    return lax.dot_general(rows.reshape(positions, -1), columns.reshape(positions, -1),
                           (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)


def _input_gemm(shifted: jax.Array, kernel: jax.Array) -> jax.Array:
    """(b, h, w, taps, out) x (kh, kw, in, out) -> (b, h, w, in), summed over taps and output
    channels, in float32."""
    taps = kernel.reshape((-1,) + kernel.shape[2:])  # (taps, in, out)
    return lax.dot_general(shifted, taps, (((3, 4), (0, 2)), ((), ())),
                           preferred_element_type=jnp.float32)
