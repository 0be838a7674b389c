"""BatchNorm folded into the convolution before it, for inference.

In inference a BatchNorm is a per-channel affine map, y = (x - mean) * scale / sigma + bias with
sigma = sqrt(var + eps), so it can be moved into the convolution's kernel (times scale / sigma per
output channel) and a per-channel shift (bias - mean * scale / sigma), which is all that remains
of the BatchNorm.
"""

from __future__ import annotations

import jax
from flax import nnx

from asf_jax.models.layers import ConvBN
from asf_jax.models.slowfast import AudioResNet


def fold_batchnorm(model: AudioResNet) -> AudioResNet:
    """An inference-only copy of `model` (left unchanged) with every ConvBN's BatchNorm folded
    into its convolution; its logits equal the original's in eval mode, to float rounding."""
    folded = nnx.clone(model)
    folded.eval()
    for _, module in nnx.iter_modules(folded):
        if isinstance(module, ConvBN):
            norm = module.bn
            factor = norm.scale[...] * jax.lax.rsqrt(norm.var[...] + norm.epsilon)  # (out,)
            module.conv.kernel.set_value(module.conv.kernel[...] * factor)  # (kh, kw, in, out)
            norm.bias.set_value(norm.bias[...] - norm.mean[...] * factor)
            norm.folded = True
    return folded
