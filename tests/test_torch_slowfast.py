"""The benchmark's PyTorch model reproduces the reference fixture (skipped without torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from asf_jax.benchmark.torch_slowfast import load_pyth, reference_sgd  # noqa: E402
from asf_jax.models.torch_import import model_config_from_cfg  # noqa: E402
from asf_jax.pyth import read_pyth  # noqa: E402

from .conftest import DATA  # noqa: E402

PYTH = DATA / "slowfast_vgg_w8.pyth"


@pytest.fixture(scope="module")
def io():
    return np.load(DATA / "slowfast_vgg_w8_io.npz")


@pytest.fixture(scope="module")
def checkpoint():
    return read_pyth(PYTH)


@pytest.fixture
def model(checkpoint):
    return load_pyth(PYTH, model_config_from_cfg(checkpoint.cfg))


def test_state_dict_keys_are_the_reference_keys_in_order(model, checkpoint):
    assert list(model.state_dict()) == list(checkpoint.model_state)


def test_eval_and_training_logits_match_reference(model, io):
    logmel = torch.from_numpy(io["input_pathway1"][:, 0])
    with torch.no_grad():
        np.testing.assert_allclose(model.eval()(logmel).numpy(), io["eval_logits"], atol=1e-4,
                                   rtol=0)
        model.train()
        model.head.dropout.p = 0.0
        np.testing.assert_allclose(model(logmel).numpy(), io["train_logits_no_dropout"],
                                   atol=1e-4, rtol=0)


def test_one_sgd_step_matches_reference(model, checkpoint, io):
    """The benchmark's train step: forward, cross-entropy, backward, the reference's SGD."""
    optimizer = reference_sgd(model)
    saved = checkpoint.optimizer_state
    optimizer.load_state_dict({
        "param_groups": saved["param_groups"],
        "state": {i: {"momentum_buffer": torch.from_numpy(np.array(s["momentum_buffer"]))}
                  for i, s in saved["state"].items()}})
    model.train()
    model.head.dropout.p = 0.0
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(io["input_pathway1"][:, 0])),
                                             torch.from_numpy(io["step_labels"]).long())
    np.testing.assert_allclose(loss.item(), float(io["step_loss"]), rtol=1e-5)
    loss.backward()
    optimizer.step()
    state = model.state_dict()
    names = [k.split("/", 1)[1] for k in io.files if k.startswith("after_step/")]
    assert len(names) == 332
    for name in names:
        tolerance = 1e-3 if name.startswith(("s1", "s2", "s3")) else 1e-5
        np.testing.assert_allclose(state[name].numpy(), io[f"after_step/{name}"], atol=tolerance,
                                   rtol=0, err_msg=name)
