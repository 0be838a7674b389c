"""The grain input pipeline: crops, determinism, resumable state, process shards, eval coverage."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from asf_jax import input_pipeline
from asf_jax.recipe import SLOW
from asf_jax.specaugment import SpecAugmentConfig

FRAMES = SLOW.num_frames  # 128: small clips keep the tests fast
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _source(num_clips: int, seed: int = 0) -> list[dict]:
    """Records as the TFDS builder writes them; clip i has label i and 128-300 frames."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(FRAMES, 300, size=num_clips)
    return [{"logmel": rng.standard_normal((int(lengths[i]), 128)).astype(np.float16),
             "views": rng.standard_normal((2, FRAMES, 128)).astype(np.float16),
             "label": np.int64(i), "youtube_id": b"x", "start_seconds": np.int32(0),
             "duration": np.float32(10), "filename": b"x.wav"}
            for i in range(num_clips)]


def _run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run Python in a fresh process, with the repository importable and JAX on the CPU."""
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu") | env
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False, cwd=REPO)


def _loader(source, **kwargs):
    kwargs = {"global_batch_size": 4, "seed": 0, "process_index": 0, "process_count": 1} | kwargs
    return input_pipeline.train_loader(source, SLOW, **kwargs)


def _take(iterator, steps: int) -> list[dict]:
    return [next(iterator) for _ in range(steps)]


def _assert_same_batches(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def _crop_start(clip: np.ndarray, crop: np.ndarray) -> int | None:
    """Where `crop` sits in `clip` (float16 values converted exactly), or None."""
    clip = clip.astype(np.float32)
    for start in range(clip.shape[0] - crop.shape[0] + 1):
        if np.array_equal(clip[start:start + crop.shape[0]], crop):
            return start
    return None


# ------------------------------------------------------------------------------------------------
# Crops.
# ------------------------------------------------------------------------------------------------


def test_float16_conversion_is_exact_for_every_finite_half():
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)]
    converted = input_pipeline.float16_to_float32(finite)
    assert converted.dtype == np.float32
    expected = finite.astype(np.float32)
    np.testing.assert_array_equal(converted.view(np.uint32), expected.view(np.uint32))


def test_random_crop_is_a_window_of_the_clip_with_every_start_possible():
    clip = np.random.default_rng(0).standard_normal((FRAMES + 2, 128)).astype(np.float16)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(40):
        crop = input_pipeline.random_crop(clip, FRAMES, rng)
        assert crop.shape == (FRAMES, 128) and crop.dtype == np.float32
        starts.add(_crop_start(clip, crop))
    assert starts == {0, 1, 2}
    with pytest.raises(ValueError, match="fewer than"):
        input_pipeline.random_crop(clip[:FRAMES - 1], FRAMES, rng)


def test_training_batches_are_crops_of_their_labelled_clips():
    source = _source(10)
    for batch in _take(_loader(source), 3):
        assert batch["logmel"].shape == (4, FRAMES, 128) and batch["logmel"].dtype == np.float32
        assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32
        for logmel, label in zip(batch["logmel"], batch["label"], strict=True):
            assert _crop_start(source[label]["logmel"], logmel) is not None


# ------------------------------------------------------------------------------------------------
# Order, determinism, state.
# ------------------------------------------------------------------------------------------------


def test_every_epoch_is_a_new_permutation():
    labels = np.concatenate([b["label"] for b in _take(_loader(_source(12)), 9)]).reshape(3, 12)
    for epoch in labels:
        assert sorted(epoch) == list(range(12))
    assert len({tuple(epoch) for epoch in labels}) == 3
    unshuffled = _take(_loader(_source(12), shuffle=False), 3)
    assert np.concatenate([b["label"] for b in unshuffled]).tolist() == list(range(12))


def test_same_seed_same_batches_other_seed_other_batches():
    source, augment = _source(12), SpecAugmentConfig()
    first = _take(_loader(source, seed=3, specaugment=augment), 4)
    _assert_same_batches(first, _take(_loader(source, seed=3, specaugment=augment), 4))
    other = _take(_loader(source, seed=4, specaugment=augment), 4)
    assert not np.array_equal(first[0]["logmel"], other[0]["logmel"])


def test_saved_state_resumes_mid_epoch_with_the_same_batches():
    source, augment = _source(10), SpecAugmentConfig()
    iterator = _loader(source, specaugment=augment, seed=5)
    _take(iterator, 2)  # 8 of 10 clips: mid-epoch
    state = json.loads(json.dumps(iterator.get_state()))
    expected = _take(iterator, 4)
    resumed = _loader(source, specaugment=augment, seed=5)
    resumed.set_state(state)
    _assert_same_batches(_take(resumed, 4), expected)


def test_process_shards_are_disjoint_and_make_up_the_global_batches():
    source = _source(12)
    single = _take(_loader(source, global_batch_size=6), 4)  # two epochs
    shards = [_take(_loader(source, global_batch_size=6, process_index=p, process_count=3), 4)
              for p in range(3)]
    for step in range(4):
        labels = [shard[step]["label"] for shard in shards]
        assert all(len(local) == 2 for local in labels)
        merged = np.concatenate(labels)
        assert len(set(merged.tolist())) == 6  # disjoint across processes
        order, single_order = np.argsort(merged), np.argsort(single[step]["label"])
        np.testing.assert_array_equal(merged[order], single[step]["label"][single_order])
        merged_logmel = np.concatenate([shard[step]["logmel"] for shard in shards])
        np.testing.assert_array_equal(merged_logmel[order], single[step]["logmel"][single_order])
    first_epoch = np.concatenate([s[step]["label"] for s in shards for step in range(2)])
    assert sorted(first_epoch.tolist()) == list(range(12))
    # The state counts steps of the global stream: it resumes under another process count.
    state = _loader(source, global_batch_size=6, process_index=1, process_count=3)
    _take(state, 2)
    resumed = _loader(source, global_batch_size=6)
    resumed.set_state(state.get_state())
    _assert_same_batches(_take(resumed, 2), single[2:])


_WORKERS_SCRIPT = textwrap.dedent("""
    import json
    import sys

    import numpy as np
    from absl import flags

    from asf_jax import input_pipeline
    from asf_jax.recipe import SLOW
    from asf_jax.specaugment import SpecAugmentConfig

    def labels(iterator, steps):
        return [next(iterator)["label"].tolist() for _ in range(steps)]

    if __name__ == "__main__":
        flags.FLAGS(sys.argv[:1])
        rng = np.random.default_rng(0)
        source = [{"logmel": rng.standard_normal((200, 128)).astype(np.float16),
                   "label": np.int64(i)} for i in range(12)]
        def loader():
            return input_pipeline.train_loader(
                source, SLOW, global_batch_size=4, seed=1, specaugment=SpecAugmentConfig(),
                worker_count=2, process_index=0, process_count=1)
        first = loader()
        head = labels(first, 2)
        state = json.dumps(first.get_state())
        tail = labels(first, 4)
        resumed = loader()  # a fresh pipeline: equal batches also show determinism
        resumed.set_state(json.loads(state))
        assert labels(resumed, 4) == tail, "state did not resume"
        assert sorted(sum(head + tail[:1], [])) == list(range(12)), "epoch not covered"
        first.close()
        resumed.close()
        print("ok")
""")


def test_worker_processes_are_deterministic_and_resumable(tmp_path):
    script = tmp_path / "workers.py"
    script.write_text(_WORKERS_SCRIPT)
    result = _run_python([str(script)], {})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_batch_size_must_divide_over_processes():
    with pytest.raises(ValueError, match="multiple of the process count"):
        _loader(_source(4), global_batch_size=5, process_count=2)


# ------------------------------------------------------------------------------------------------
# Evaluation.
# ------------------------------------------------------------------------------------------------


def _eval(source, batch_size, process_index=0, process_count=1):
    return list(input_pipeline.eval_batches(source, SLOW, global_batch_size=batch_size,
                                            read_threads=2, process_index=process_index,
                                            process_count=process_count))


@pytest.mark.parametrize("num_clips", [1, 7, 8, 9])
def test_eval_yields_each_clip_once_in_order_with_padding_masked(num_clips):
    source = _source(num_clips)
    batches = _eval(source, 4)
    assert len(batches) == input_pipeline.num_eval_batches(num_clips, 4)
    for batch in batches:
        assert batch["logmel"].shape == (4, 2, FRAMES, 128) and batch["logmel"].dtype == np.float32
        assert batch["mask"].dtype == bool and batch["label"].dtype == np.int32
    mask = np.concatenate([b["mask"] for b in batches])
    index = np.concatenate([b["index"] for b in batches])
    assert index[mask].tolist() == list(range(num_clips)) and not mask[num_clips:].any()
    assert np.all(index[~mask] == -1)
    logmel = np.concatenate([b["logmel"] for b in batches])
    label = np.concatenate([b["label"] for b in batches])
    for i in range(num_clips):
        np.testing.assert_array_equal(logmel[i], source[i]["views"].astype(np.float32))
        assert label[i] == i
    assert not logmel[~mask].any()


@pytest.mark.parametrize("num_clips,batch_size,processes", [(10, 4, 2), (5, 4, 4), (9, 6, 3)])
def test_eval_processes_read_disjoint_contiguous_slices_and_step_together(
        num_clips, batch_size, processes):
    source = _source(num_clips)
    steps = input_pipeline.num_eval_batches(num_clips, batch_size)
    seen = []
    for process in range(processes):
        batches = _eval(source, batch_size, process, processes)
        assert len(batches) == steps
        assert all(len(b["mask"]) == batch_size // processes for b in batches)
        mask = np.concatenate([b["mask"] for b in batches])
        index = np.concatenate([b["index"] for b in batches])[mask]
        if len(index):
            assert index.tolist() == list(range(index[0], index[-1] + 1))
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(num_clips))


def test_eval_needs_test_views():
    source = _source(3)
    for record in source:
        record["views"] = np.zeros((0, FRAMES, 128), np.float16)
    with pytest.raises(ValueError, match="no test views"):
        _eval(source, 2)


# ------------------------------------------------------------------------------------------------
# Mesh and global arrays (8 fake CPU devices need their own process).
# ------------------------------------------------------------------------------------------------

_SHARDING_SCRIPT = textwrap.dedent("""
    import jax
    import numpy as np
    from jax.sharding import PartitionSpec
    from asf_jax import input_pipeline

    mesh = input_pipeline.make_mesh()
    assert jax.device_count() == 8 and mesh.axis_names == ("data",) and mesh.shape["data"] == 8
    local = {"logmel": np.arange(16 * 2 * 4 * 3, dtype=np.float32).reshape(16, 2, 4, 3),
             "label": np.arange(16, dtype=np.int32), "mask": np.ones(16, bool)}
    batch = input_pipeline.shard_batch(local, mesh)
    for name, array in batch.items():
        assert array.shape == local[name].shape and array.dtype == local[name].dtype, name
        assert array.sharding.spec == PartitionSpec("data"), array.sharding
        assert len(array.addressable_shards) == 8
        assert {s.data.shape[0] for s in array.addressable_shards} == {2}
        np.testing.assert_array_equal(np.asarray(array), local[name])
    print("ok")
""")


def test_shard_batch_splits_the_batch_over_eight_devices():
    result = _run_python(["-c", _SHARDING_SCRIPT],
                         {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
