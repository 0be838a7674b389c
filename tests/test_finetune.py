"""Fine-tuning: learning-rate multipliers and a frozen backbone in the optimiser and train step,
frozen BatchNorm statistics, and mixup."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asf_jax.models.slowfast import ModelConfig, create_model
from asf_jax.optim import parameter_groups, sgd_with_decay
from asf_jax.steps import (
    Mixup,
    ModelGraphs,
    TrainState,
    make_train_step,
    mix_batch,
    split_variables,
)

TINY = ModelConfig(arch="slow", width=4, stage_blocks=(1, 1, 1, 1), num_classes=3, num_frames=16,
                   embedding_dim=2)


def test_backbone_learns_at_a_fraction_of_the_heads_rate():
    params = {"stem": {"kernel": jnp.ones(3)}, "head": {"kernel": jnp.ones(2)},
              "lep_head": {"projection": {"bias": jnp.ones(2)}}}
    assert jax.tree.leaves(parameter_groups(params)) == ["head", "head", "backbone"]
    grads = jax.tree.map(jnp.ones_like, params)
    for multiplier, expected in ((0.5, -0.05), (0.0, 0.0), (1.0, -0.1)):
        tx = sgd_with_decay(0.1, momentum=0.0, weight_decay=0.0,
                            backbone_lr_multiplier=multiplier)
        updates, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_allclose(updates["stem"]["kernel"], expected, rtol=1e-6)
        np.testing.assert_allclose(updates["head"]["kernel"], -0.1, rtol=1e-6)
        np.testing.assert_allclose(updates["lep_head"]["projection"]["bias"], -0.1, rtol=1e-6)


def train(freeze_backbone: bool, freeze_batch_stats: bool, mixup: Mixup | None = None,
          steps: int = 2) -> tuple[TrainState, TrainState]:
    model = create_model(TINY)
    tx = sgd_with_decay(0.1, backbone_lr_multiplier=0.0 if freeze_backbone else 1.0)
    params, batch_stats = split_variables(model)
    initial = TrainState(step=jnp.asarray(0), params=params, batch_stats=batch_stats,
                         opt_state=tx.init(params))
    step = jax.jit(make_train_step(ModelGraphs.of(model, freeze_batch_stats), tx, lambda _: 0.1,
                                   jax.random.key(0), freeze_backbone=freeze_backbone,
                                   mixup=mixup))
    rng = np.random.default_rng(0)
    state = initial
    for _ in range(steps):
        batch = {"logmel": rng.standard_normal((4, 16, 128)).astype(np.float32),
                 "label": rng.integers(0, 3, 4).astype(np.int32)}
        state, metrics = step(state, batch)
        assert np.isfinite(float(metrics["loss"]))
    return initial, state


def test_frozen_backbone_stays_bit_identical_while_the_heads_learn():
    initial, state = train(freeze_backbone=True, freeze_batch_stats=True)
    for name in initial.params:
        same = jax.tree.map(np.array_equal, initial.params[name], state.params[name])
        if name in ("head", "lep_head"):
            assert not all(jax.tree.leaves(same)), name
        else:
            assert all(jax.tree.leaves(same)), name
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, initial.batch_stats,
                                            state.batch_stats)))


def test_batch_statistics_move_unless_frozen():
    initial, state = train(freeze_backbone=False, freeze_batch_stats=False, steps=1)
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, initial.batch_stats,
                                                state.batch_stats)))
    initial, state = train(freeze_backbone=False, freeze_batch_stats=True, steps=1)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, initial.batch_stats,
                                            state.batch_stats)))
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, initial.params["pathways"],
                                                state.params["pathways"])))


def test_mixup_mixes_whole_batches_at_the_given_rate():
    x = jnp.arange(6 * 5, dtype=jnp.float32).reshape(6, 5)
    unchanged, lam, _ = mix_batch(jax.random.key(0), x, Mixup(rate=0.0, alpha=0.2))
    assert float(lam) == 1.0 and np.array_equal(unchanged, x)
    lams = []
    for seed in range(20):
        mixed, lam, permutation = mix_batch(jax.random.key(seed), x, Mixup(rate=1.0, alpha=0.4))
        assert sorted(np.asarray(permutation).tolist()) == list(range(6))
        np.testing.assert_allclose(mixed, lam * x + (1 - lam) * x[permutation], rtol=1e-6)
        lams.append(float(lam))
    assert all(0.5 <= value <= 1.0 for value in lams) and len(set(lams)) > 10
    used = [float(mix_batch(jax.random.key(s), x, Mixup(rate=0.5, alpha=0.4))[1]) < 1
            for s in range(200)]
    assert np.mean(used) == pytest.approx(0.5, abs=0.1)


def test_training_with_mixup_runs():
    train(freeze_backbone=False, freeze_batch_stats=False, mixup=Mixup(rate=1.0, alpha=0.2))
