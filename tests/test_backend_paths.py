"""The CPU-only fast paths (conv backward, stored block outputs, max-pool gradient) compute what
the plain XLA path that GPUs and TPUs take computes: loss and every gradient of a small model."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from asf_jax.models.layers import BatchNorm
from asf_jax.models.slowfast import ModelConfig, create_model


def small_model():
    model = create_model(ModelConfig(width=8, stage_blocks=(1, 1, 1, 1), num_classes=5))
    rng = np.random.default_rng(1)
    for _, norm in nnx.iter_modules(model):  # no zero-initialised branch: every path counts
        if isinstance(norm, BatchNorm):
            norm.scale.set_value(jnp.asarray(rng.uniform(0.5, 1.5, norm.scale.shape),
                                             jnp.float32))
    model.train()
    model.dropout.deterministic = True
    return model


def loss_and_gradients(model):
    """Traced afresh on every call, so the backend the model code sees at trace time counts."""
    logmel = jnp.asarray(np.random.default_rng(0).standard_normal((2, 32, 32)), jnp.float32)

    def loss_fn(model):
        logits = model(logmel).logits
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.array([1, 3])).mean()

    loss, grads = nnx.jit(nnx.value_and_grad(loss_fn))(nnx.clone(model))
    return loss, nnx.to_pure_dict(grads)


def test_cpu_fast_paths_match_the_accelerator_path(monkeypatch):
    model = small_model()
    cpu_loss, cpu_grads = loss_and_gradients(model)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # only the model code asks
    loss, grads = loss_and_gradients(model)
    np.testing.assert_allclose(cpu_loss, loss, rtol=1e-5)
    flat, ref = jax.tree.leaves_with_path(cpu_grads), jax.tree.leaves(grads)
    assert len(flat) == len(ref) > 50
    got, want = (np.concatenate([np.ravel(leaf) for leaf in leaves])
                 for leaves in ([leaf for _, leaf in flat], ref))
    assert np.linalg.norm(got - want) < 1e-5 * np.linalg.norm(want)
    # Leaf by leaf, where the gradient is not a tiny remainder of cancelling float32 sums.
    scale = max(np.linalg.norm(leaf) for leaf in ref)
    for (path, got), want in zip(flat, ref, strict=True):
        if np.linalg.norm(want) > 1e-3 * scale:
            error = np.linalg.norm(np.asarray(got) - want) / np.linalg.norm(want)
            assert error < 1e-4, (jax.tree_util.keystr(path), error)
