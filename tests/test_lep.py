"""The LEP head and loss (thesis formula), its gradients, and open-vocabulary scoring."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from asf_jax.lep import (
    LEPClassifierModel,
    LEPHead,
    held_out_topk_accuracy,
    lep_loss,
    open_vocab_scores,
    rank_labels,
    split_held_out_classes,
)

NUM_CLASSES, DIM, FEATURES, BATCH = 6, 3, 8, 4


def tiny_model(seed: int = 0) -> LEPClassifierModel:
    """An nnx.Linear stands in for the audio network: the head only sees its logits."""
    rngs = nnx.Rngs(seed)
    return LEPClassifierModel(nnx.Linear(FEATURES, NUM_CLASSES, rngs=rngs),
                              LEPHead(NUM_CLASSES, DIM, rngs=rngs))


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((BATCH, FEATURES)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, BATCH)
    table = rng.standard_normal((NUM_CLASSES, DIM)).astype(np.float32)
    return inputs, labels, table


def test_loss_matches_hand_computation():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((BATCH, NUM_CLASSES)).astype(np.float32)
    projected = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    _, labels, table = batch()
    lam = 0.3
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ce = -log_softmax[np.arange(BATCH), labels].mean()
    mse = ((projected - table[labels]) ** 2).mean()

    loss, aux = lep_loss(logits, projected, labels, table, lam)

    np.testing.assert_allclose(aux["ce"], ce, rtol=1e-6)
    np.testing.assert_allclose(aux["mse"], mse, rtol=1e-6)
    np.testing.assert_allclose(loss, (1 - lam) * ce + lam * mse, rtol=1e-6)


def test_model_returns_logits_and_projection():
    model = tiny_model()
    inputs, _, _ = batch()
    logits, projected = model(jnp.asarray(inputs))
    np.testing.assert_allclose(logits, model.backbone(inputs))
    np.testing.assert_allclose(projected, logits @ model.head.projection.kernel[...]
                               + model.head.projection.bias[...], rtol=1e-6)
    assert projected.shape == (BATCH, DIM)


def grads(lam: float) -> tuple[nnx.State, nnx.State]:
    """(LEP-loss gradients, CE-only gradients) of the same model on the same batch."""
    model = tiny_model()
    inputs, labels, table = batch()

    def lep(m: LEPClassifierModel) -> jax.Array:
        return lep_loss(*m(inputs), labels, table, lam)[0]

    def ce_only(m: LEPClassifierModel) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(m(inputs)[0], labels).mean()

    return nnx.jit(nnx.grad(lep))(model), nnx.jit(nnx.grad(ce_only))(model)


def test_lambda_zero_gives_the_baseline_gradients_exactly():
    lep, baseline = grads(0.0)
    for got, want in zip(jax.tree.leaves(lep["backbone"]), jax.tree.leaves(baseline["backbone"]),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    for leaf in jax.tree.leaves(lep["head"]):
        np.testing.assert_array_equal(leaf, 0.0)


def test_embedding_term_reaches_backbone_and_head():
    lep, baseline = grads(0.5)
    assert all(np.abs(leaf).max() > 0 for leaf in jax.tree.leaves(lep["head"]))
    assert not np.allclose(lep["backbone"]["kernel"][...], baseline["backbone"]["kernel"][...])


def test_training_steps_lower_the_loss_and_leave_the_table_alone():
    """The trainer's composition: nnx.Optimizer over Params, clipping 1.0, a jitted step."""
    model = tiny_model()
    inputs, labels, table = batch()
    table_before = table.copy()
    optimizer = nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)),
                              wrt=nnx.Param)

    @nnx.jit
    def step(model: LEPClassifierModel, optimizer: nnx.Optimizer) -> jax.Array:
        def loss_fn(m: LEPClassifierModel) -> jax.Array:
            return lep_loss(*m(inputs), labels, table, 0.5)[0]

        loss, g = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, g)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(20)]
    assert losses[-1] < 0.7 * losses[0]
    np.testing.assert_array_equal(table, table_before)


def test_open_vocab_scores_are_cosines():
    rng = np.random.default_rng(2)
    projected = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    labels = rng.standard_normal((5, DIM)).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(open_vocab_scores(projected, labels), unit(projected)
                               @ unit(labels).T, rtol=1e-5, atol=1e-6)
    # Scaling a projection or a label embedding does not change its scores.
    np.testing.assert_allclose(open_vocab_scores(3 * projected, 0.5 * labels),
                               open_vocab_scores(projected, labels), rtol=1e-5, atol=1e-6)


def test_rank_labels_puts_the_nearest_label_first():
    table = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], np.float32)
    projected = np.array([[0.1, 2.0, 0.1], [1.0, 0.9, 0.0], [0.0, 0.1, -3.0]], np.float32)
    scores, order = rank_labels(projected, table, k=4)
    np.testing.assert_array_equal(order[:, 0], [1, 3, 1])
    assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)
    assert rank_labels(projected, table, k=10)[1].shape == (3, 4)


def test_split_held_out_classes():
    names = [f"class {i}" for i in range(20)]
    train, held = split_held_out_classes(names, 5, seed=0)
    assert len(held) == 5 and sorted(train + held) == sorted(names)
    assert train == [n for n in names if n in train] and held == [n for n in names if n in held]
    assert split_held_out_classes(names, 5, seed=0) == (train, held)
    assert split_held_out_classes(names, 5, seed=1)[1] != held
    with pytest.raises(ValueError, match="k must be"):
        split_held_out_classes(names, 20, seed=0)


def test_held_out_topk_accuracy_and_chance():
    table = np.eye(8, dtype=np.float32)
    labels = np.array([0, 3, 5, 7])
    perfect = held_out_topk_accuracy(table[labels], labels, table)
    assert (perfect.top1, perfect.top5) == (1.0, 1.0)
    assert (perfect.chance_top1, perfect.chance_top5) == (1 / 8, 5 / 8)
    # Each projection points at the next label: never first, always in the top 5.
    shifted = table[(labels + 1) % 8] + 0.5 * table[labels]
    result = held_out_topk_accuracy(shifted, labels, table)
    assert (result.top1, result.top5) == (0.0, 1.0)
