"""BatchNorm folded into the convolutions: same logits, inference only, original untouched."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from asf_jax.models.fold import fold_batchnorm
from asf_jax.models.slowfast import abstract_model
from asf_jax.models.torch_import import load_torch_state, model_config_from_cfg
from asf_jax.pyth import read_pyth

from .conftest import DATA


def test_folded_model_gives_the_same_logits_and_cannot_train():
    checkpoint = read_pyth(DATA / "slowfast_vgg_w8.pyth")
    model = abstract_model(model_config_from_cfg(checkpoint.cfg))
    load_torch_state(model, checkpoint.model_state)  # random non-trivial BN statistics
    model.eval()
    logmel = jnp.asarray(np.load(DATA / "slowfast_vgg_w8_io.npz")["input_pathway1"][:, 0])
    kernel = np.asarray(model.pathways[0].stem.conv.kernel[...])

    folded = fold_batchnorm(model)
    expected = np.asarray(nnx.jit(lambda m, x: m(x).logits)(model, logmel))
    got = np.asarray(nnx.jit(lambda m, x: m(x).logits)(folded, logmel))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(model.pathways[0].stem.conv.kernel[...], kernel)
    assert not np.allclose(folded.pathways[0].stem.conv.kernel[...], kernel)

    folded.train()
    with pytest.raises(ValueError, match="inference only"):
        folded(logmel)
