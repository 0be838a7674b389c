"""The LEP head and loss (thesis formula), its gradients, and open-vocabulary scoring."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from asf_jax.lep import (
    classes_by_name,
    embedding_loss,
    gzsl_accuracy,
    held_out_class_indices,
    held_out_topk_accuracy,
    lep_loss,
    open_vocab_scores,
    rank_labels,
)
from asf_jax.models.slowfast import AudioResNet, ModelConfig

NUM_CLASSES, DIM, FRAMES, BATCH = 6, 3, 16, 4


def tiny_model(seed: int = 0, embedding_dim: int = DIM, source: str = "logits") -> AudioResNet:
    """A one-block-per-stage Slow-only width-4 network with (or without) an LEP head."""
    config = ModelConfig(arch="slow", width=4, stage_blocks=(1, 1, 1, 1), num_classes=NUM_CLASSES,
                         num_frames=FRAMES, dropout_rate=0.0, embedding_dim=embedding_dim,
                         embedding_source=source)
    model = AudioResNet(config, rngs=nnx.Rngs(seed))
    model.eval()
    return model


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((BATCH, FRAMES, 128)).astype(np.float32)
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


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_cosine_and_contrastive_terms_match_hand_computation():
    rng = np.random.default_rng(3)
    projected = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    _, labels, table = batch()
    cosine = 1 - (unit(projected) * unit(table[labels])).sum(axis=1)
    np.testing.assert_allclose(embedding_loss(projected, labels, table, "cosine"),
                               cosine.mean(), rtol=1e-5)
    # Scaling the table (unit-norm sentence embeddings vs GloVe) leaves the cosine term alone.
    np.testing.assert_allclose(embedding_loss(projected, labels, 10 * table, "cosine"),
                               cosine.mean(), rtol=1e-5)
    trained = np.arange(NUM_CLASSES) != 5
    labels = np.where(labels == 5, 0, labels)
    scores = unit(projected) @ unit(table).T / 0.5
    scores[:, ~trained] = -np.inf
    log_softmax = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(BATCH), labels].mean()
    np.testing.assert_allclose(embedding_loss(projected, labels, table, "contrastive", 0.5,
                                              trained), expected, rtol=1e-5)
    loss, terms = lep_loss(np.zeros((BATCH, NUM_CLASSES), np.float32), projected, labels, table,
                           0.25, "contrastive", 0.5, trained)
    np.testing.assert_allclose(terms["contrastive"], expected, rtol=1e-5)
    np.testing.assert_allclose(loss, 0.75 * np.log(NUM_CLASSES) + 0.25 * expected, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown LEP loss"):
        embedding_loss(projected, labels, table, "hinge")


def test_projection_of_the_pooled_features():
    model = tiny_model(source="features")
    inputs, _, _ = batch()
    features = model.features(jnp.asarray(inputs))
    pooled = jnp.concatenate([f.mean(axis=(1, 2)) for f in features], axis=-1)
    _, projected = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(inputs))
    assert model.lep_head.projection.kernel.shape == (pooled.shape[1], DIM)
    np.testing.assert_allclose(projected, model.lep_head(pooled), rtol=1e-4, atol=1e-5)


def test_model_returns_logits_and_projection():
    model = tiny_model()
    inputs, _, _ = batch()
    forward = nnx.jit(lambda m, x: m(x))
    logits, projected = forward(model, jnp.asarray(inputs))
    head = model.lep_head.projection
    np.testing.assert_allclose(projected, logits @ head.kernel[...] + head.bias[...], rtol=1e-5,
                               atol=1e-6)
    assert projected.shape == (BATCH, DIM)
    # The same model without the head (same seed) answers the same call with the same logits.
    plain_logits, plain_projection = forward(tiny_model(embedding_dim=0), jnp.asarray(inputs))
    assert plain_projection is None
    np.testing.assert_array_equal(plain_logits, logits)


def grads(lam: float) -> tuple[dict, dict]:
    """(LEP-loss gradients, CE-only gradients) of the same model on the same batch."""
    model = tiny_model()
    inputs, labels, table = batch()

    def lep(m: AudioResNet) -> jax.Array:
        return lep_loss(*m(inputs), labels, table, lam)[0]

    def ce_only(m: AudioResNet) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(m(inputs).logits, labels).mean()

    return (nnx.to_pure_dict(nnx.jit(nnx.grad(lep))(model)),
            nnx.to_pure_dict(nnx.jit(nnx.grad(ce_only))(model)))


def backbone(tree: dict) -> dict:
    return {key: value for key, value in tree.items() if key != "lep_head"}


def test_lambda_zero_gives_the_baseline_gradients_exactly():
    lep, baseline = grads(0.0)
    for got, want in zip(jax.tree.leaves(backbone(lep)), jax.tree.leaves(backbone(baseline)),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    for leaf in jax.tree.leaves(lep["lep_head"]):
        np.testing.assert_array_equal(leaf, 0.0)


def test_embedding_term_reaches_backbone_and_head():
    lep, baseline = grads(0.5)
    assert all(np.abs(leaf).max() > 0 for leaf in jax.tree.leaves(lep["lep_head"]))
    assert not np.allclose(lep["head"]["kernel"], baseline["head"]["kernel"])


def test_training_steps_lower_the_loss_and_leave_the_table_alone():
    """The trainer's composition: nnx.Optimizer over Params, clipping 1.0, a jitted step."""
    model = tiny_model()
    inputs, labels, table = batch()
    table_before = table.copy()
    optimizer = nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)),
                              wrt=nnx.Param)

    @nnx.jit
    def step(model: AudioResNet, optimizer: nnx.Optimizer) -> jax.Array:
        def loss_fn(m: AudioResNet) -> jax.Array:
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


def test_held_out_classes_are_chosen_by_seed():
    held = held_out_class_indices(20, 5, seed=0)
    assert len(set(held)) == 5 and list(held) == sorted(held) and max(held) < 20
    assert held_out_class_indices(20, 5, seed=0) == held
    assert held_out_class_indices(20, 5, seed=1) != held
    with pytest.raises(ValueError, match="k must be"):
        held_out_class_indices(20, 20, seed=0)


def test_held_out_classes_by_name_even_with_commas_in_names():
    names = ["viola", "playing steel guitar, slide guitar", "tenor sax", "steel guitar"]
    assert classes_by_name("Tenor Sax,viola", names) == (0, 2)
    assert classes_by_name("playing steel guitar, slide guitar,steel guitar", names) == (1, 3)
    assert classes_by_name("", names) == ()
    with pytest.raises(ValueError, match=r"not class names: \['cello'\]"):
        classes_by_name("viola,cello", names)


def test_generalised_zero_shot_accuracy_by_hand():
    # Classes 0, 1 seen and 2 unseen; per-class accuracy, then the harmonic mean.
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 1, 0, 2, 0])
    scores = np.eye(3)[predicted]
    seen, unseen, harmonic = gzsl_accuracy(scores, labels, unseen=[2])
    assert seen == pytest.approx((0.5 + 0.75) / 2) and unseen == pytest.approx(0.5)
    assert harmonic == pytest.approx(2 * 0.625 * 0.5 / (0.625 + 0.5))
    # A model that never predicts the unseen class has harmonic mean 0 however good on seen.
    assert gzsl_accuracy(np.eye(3)[np.array([0, 0, 1, 1, 1, 1, 0, 1])], labels, [2])[2] == 0


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
