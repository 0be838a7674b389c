"""Numerical parity with the original PyTorch model (fixtures in tests/data, README tolerances)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from asf_jax.classifier import load_classifier
from asf_jax.models.slowfast import AudioResNet, abstract_model, count_parameters
from asf_jax.models.torch_import import (
    load_torch_state,
    model_config_from_cfg,
    torch_key_to_path,
    torch_momentum_buffers,
)
from asf_jax.optim import sgd_with_decay
from asf_jax.pyth import read_pyth

from .conftest import DATA


@pytest.fixture(scope="module")
def io():
    return np.load(DATA / "slowfast_vgg_w8_io.npz")


@pytest.fixture(scope="module")
def checkpoint():
    return read_pyth(DATA / "slowfast_vgg_w8.pyth")


@pytest.fixture(scope="module")
def blank_model(checkpoint) -> AudioResNet:
    return abstract_model(model_config_from_cfg(checkpoint.cfg))


@pytest.fixture
def model(blank_model, checkpoint) -> AudioResNet:
    """The checkpoint's model in a fresh state (loading replaces every variable)."""
    load_torch_state(blank_model, checkpoint.model_state)
    blank_model.train()
    blank_model.dropout.deterministic = True
    return blank_model


def variable_at(model, torch_key: str) -> np.ndarray:
    node = model
    for part in torch_key_to_path(torch_key):
        node = node[part] if isinstance(part, int) else getattr(node, part)
    value = np.asarray(node[...])
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    return value.T if value.ndim == 2 else value


def test_parameter_count_and_slow_gather(model, io):
    assert count_parameters(model) == 501_756
    slow, fast = model.pathway_inputs(jnp.asarray(io["input_pathway1"][:, 0]))
    np.testing.assert_array_equal(np.asarray(slow)[..., 0], io["input_pathway0"][:, 0])
    np.testing.assert_array_equal(np.asarray(fast)[..., 0], io["input_pathway1"][:, 0])


def test_eval_logits_match_reference(checkpoint, io):
    classifier = load_classifier(DATA / "slowfast_vgg_w8.pyth")
    logits = classifier.logits(io["input_pathway1"][:, 0])
    np.testing.assert_allclose(logits, io["eval_logits"], atol=1e-4, rtol=0)
    probs = classifier.probabilities(io["input_pathway1"][:, 0])
    np.testing.assert_allclose(probs, io["eval_probs"], atol=1e-6, rtol=1e-4)


def test_training_forward_logits_and_running_statistics(model, io):
    logits = nnx.jit(lambda m, x: m(x).logits)(model, jnp.asarray(io["input_pathway1"][:, 0]))
    np.testing.assert_allclose(np.asarray(logits), io["train_logits_no_dropout"], atol=1e-4,
                               rtol=0)
    keys = [k for k in io.files if k.startswith("after_train_forward/")]
    assert len(keys) == 2 * 110  # every BatchNorm of the w=8 SlowFast, mean and var
    for key in keys:
        expected = io[key]
        actual = variable_at(model, key.split("/", 1)[1])
        tolerance = np.maximum(1e-5 * np.abs(expected), 1e-6)
        assert np.all(np.abs(actual - expected) <= tolerance), key


def test_one_sgd_step_matches_pytorch(model, checkpoint, io):
    x = jnp.asarray(io["input_pathway1"][:, 0])
    labels = jnp.asarray(io["step_labels"])
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))

    @nnx.jit
    def loss_and_grads(model):
        def loss_fn(model):
            logits = model(x).logits
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return nnx.value_and_grad(loss_fn)(model)

    loss, grads = loss_and_grads(model)
    np.testing.assert_allclose(float(loss), float(io["step_loss"]), rtol=1e-5)

    grads = nnx.to_pure_dict(grads)
    tx = sgd_with_decay(0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    state = tx.init(params)
    buffers = torch_momentum_buffers(checkpoint.model_state, checkpoint.optimizer_state)
    trace = jax.tree.map(np.zeros_like, params)
    for key, buffer in buffers.items():
        path = torch_key_to_path(key)
        node = trace
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = buffer.transpose(2, 3, 1, 0) if buffer.ndim == 4 else (
            buffer.T if buffer.ndim == 2 else buffer)
    state = optax.tree_utils.tree_set(state, trace=trace)
    updates, _ = tx.update(grads, state, params)
    new_params = optax.apply_updates(params, updates)
    nnx.update(model, nnx.State(new_params))

    keys = [k for k in io.files if k.startswith("after_step/")]
    assert len(keys) == 332
    for key in keys:
        name = key.split("/", 1)[1]
        tolerance = 1e-3 if name.startswith(("s1", "s2", "s3")) else 1e-5
        np.testing.assert_allclose(variable_at(model, name), io[key], atol=tolerance, rtol=0,
                                   err_msg=name)
