"""Clips shorter than one input: the recipe's `short_clips` mode, one fill for every reader."""

import dataclasses
import math

import numpy as np
import pytest

from asf_jax import audio, input_pipeline
from asf_jax.configs import load_config
from asf_jax.recipe import SHORT_CLIP_MODES, SLOW, AudioRecipe, get_recipe
from asf_jax.settings import Settings

RNG = np.random.default_rng(0)
SAMPLES = RNG.uniform(-0.5, 0.5, 30 * SLOW.hop_length).astype(np.float32)  # 30 frames' worth
OWN = audio.clip_frames(len(SAMPLES), SLOW)  # 31 frames


def _recipe(mode: str) -> AudioRecipe:
    return dataclasses.replace(SLOW, short_clips=mode)


def test_pad_frames_modes():
    features = RNG.standard_normal((5, 3)).astype(np.float32)
    edge = audio.pad_frames(features, 12, _recipe("edge"))
    tile = audio.pad_frames(features, 12, _recipe("tile"))
    floor = audio.pad_frames(features, 12, _recipe("floor"))
    zero = audio.pad_frames(features, 12, _recipe("zero"))
    for padded in (edge, tile, floor, zero):
        assert padded.shape == (12, 3) and padded.dtype == np.float32
        np.testing.assert_array_equal(padded[:5], features)
    np.testing.assert_array_equal(edge[5:], np.repeat(features[-1:], 7, axis=0))
    np.testing.assert_array_equal(tile, np.concatenate([features, features, features[:2]]))
    np.testing.assert_allclose(floor[5:], math.log(SLOW.log_offset))
    np.testing.assert_array_equal(zero[5:], 0)
    long = RNG.standard_normal((20, 3))
    assert audio.pad_frames(long, 12, _recipe("tile")) is long


def test_floor_is_the_log_mel_of_silence():
    silence = audio.logmel(np.zeros(SLOW.clip_samples, np.float32), SLOW)
    filled = audio.pad_frames(np.zeros((1, SLOW.num_mels), np.float32), 4, _recipe("floor"))
    np.testing.assert_allclose(filled[1:], silence[:3], rtol=1e-6)


def test_old_recipe_dicts_load_as_edge_and_bad_modes_are_refused():
    old = {k: v for k, v in SLOW.to_dict().items() if k != "short_clips"}
    assert get_recipe(old).short_clips == "edge" and get_recipe(old) == SLOW
    assert get_recipe(_recipe("tile").to_dict()).short_clips == "tile"
    assert _recipe("tile").features == SLOW.features  # the stored features do not depend on it
    with pytest.raises(ValueError, match="short_clips must be one of"):
        _recipe("mirror")


def _record(recipe: AudioRecipe) -> dict:
    """A short test clip as the builder stores it: whole log-mel and views edge padded."""
    views = audio.logmel_views(SAMPLES, recipe=SLOW)
    return {"logmel": audio.pad_frames(audio.logmel(SAMPLES, recipe), recipe.num_frames),
            "views": views, "label": 0, "duration": np.float32(len(SAMPLES) / recipe.sample_rate)}


@pytest.mark.parametrize("mode", SHORT_CLIP_MODES)
def test_training_crops_test_views_and_audio_views_agree(mode):
    """Whatever the stored padding, the training crop, the stored test views read back and the
    views made from audio (predict, explain) are the same filled clip."""
    recipe = _recipe(mode)
    record = _record(recipe)
    from_audio = audio.logmel_views(SAMPLES, recipe=recipe)  # (2, frames, mel)
    np.testing.assert_array_equal(from_audio[0], from_audio[1])
    np.testing.assert_array_equal(from_audio[0][:OWN], audio.logmel(SAMPLES, SLOW))
    expected = audio.pad_frames(audio.logmel(SAMPLES, SLOW), SLOW.num_frames, recipe)
    np.testing.assert_array_equal(from_audio[0], expected)
    np.testing.assert_array_equal(input_pipeline.clip_views(record, recipe), from_audio)
    crop = next(input_pipeline.train_loader([record] * 2, recipe, global_batch_size=2, seed=0,
                                            process_index=0, process_count=1, read_threads=0))
    np.testing.assert_array_equal(crop["logmel"][0], from_audio[0])
    batch = next(input_pipeline.eval_batches([record], recipe, global_batch_size=1,
                                             read_threads=0, process_index=0, process_count=1))
    np.testing.assert_array_equal(batch["logmel"][0], from_audio)


def test_long_clips_are_read_as_stored():
    record = {"logmel": RNG.standard_normal((300, 8)), "views": RNG.standard_normal((2, 128, 8)),
              "label": 0, "duration": np.float32(20.0)}
    tile = _recipe("tile")
    assert input_pipeline.clip_logmel(record, tile) is record["logmel"]
    assert input_pipeline.clip_views(record, tile) is record["views"]


@pytest.mark.parametrize("name", ["small_data", "finetune", "finetune:small_data"])
def test_small_data_and_finetune_configs_load_and_validate(name):
    settings = Settings.from_config(load_config(name))
    small = name != "finetune"  # plain finetune keeps the reference network of the .pyth
    assert (settings.model["stage_blocks"] == (1, 1, 1, 1)) == small
    assert bool(settings.train.init_from) == name.startswith("finetune")


def test_config_short_clips_overrides_the_datasets_recipe(tiny_dataset):
    from asf_jax.settings import ConfigError
    from asf_jax.train import load_data

    config = load_config("demo")
    config.data.data_dir, config.data.config = str(tiny_dataset), "slow"
    config.train.global_batch_size = 2
    assert load_data(Settings.from_config(config)).train.recipe.short_clips == "edge"
    config.data.short_clips = "tile"
    data = load_data(Settings.from_config(config))
    assert (data.train.recipe.short_clips, data.eval.recipe.short_clips) == ("tile", "tile")
    config.data.short_clips = "mirror"
    with pytest.raises(ConfigError, match="short_clips"):
        Settings.from_config(config)
