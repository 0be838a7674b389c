"""asf_jax.datasets.real_sounds without the packages: labels, folds, splits, duplicates, the
written layout, the MIDI note list and the Qt resource reader, on data made here."""

from __future__ import annotations

import csv
import struct

import mido
import numpy as np
import pytest
import soundfile

from asf_jax.datasets.real_sounds.cli import parse_args
from asf_jax.datasets.real_sounds.clips import (
    PEAK,
    Clip,
    cross_group_matches,
    deduplicate,
    finish,
    waveform_match,
)
from asf_jax.datasets.real_sounds.drums import hydrogen_label
from asf_jax.datasets.real_sounds.folds import assign_folds, choose_test_fold
from asf_jax.datasets.real_sounds.instruments import (
    INSTRUMENTS,
    NOTE_VELOCITIES,
    PITCHES_PER_INSTRUMENT,
    instrument_notes,
)
from asf_jax.datasets.real_sounds.midi import Note, write_midi
from asf_jax.datasets.real_sounds.other import gcompris_label, qt_resources
from asf_jax.datasets.real_sounds.packages import PreparationError
from asf_jax.datasets.real_sounds.writing import SetSpec, write_set


@pytest.mark.parametrize("name, label", [
    ("Kick (Tama Superstar 22\")", "kick"), ("BassDrum", "kick"), ("Pearl Snare Rimshot", "snare"),
    ("Snare Roll", None), ("Hat Semi-Open", None), ("Sabian Hat Closed", "hihat_closed"),
    ("Snare (Pearl Free Floating Maple 14x3.5)", "snare"), ("Hi Hat Free", None),
    ("VariBreaks Hat 1 Op", "hihat_open"), ("Pedal HH", "hihat_pedal"), ("Floor Tom", "tom_low"),
    ("Tom Mid", None), ("Pearl Tom 1", "tom_high"), ("Tom Hi", "tom_high"),
    ("Ride Bell (Custom, Zagrebin 22\")", "ride_bell"), ("Crash/Ride (Paiste)", None),
    ("Sabian Crash Flink", None), ("Hand Clap", "clap"), ("c#3 - stick", "side_stick"),
    ("Cowbell", "cowbell"), ("Conga 1", None),
])
def test_hydrogen_instrument_names(name, label):
    assert hydrogen_label(name) == label


def test_folds_hold_whole_groups_and_balance_them():
    sizes = {"a": 50, "b": 30, "c": 25, "d": 20, "e": 5}
    folds = assign_folds(sizes, 3)
    assert folds == {"a": 1, "b": 2, "c": 3, "d": 3, "e": 2}
    assert assign_folds(sizes, 10) == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    # The test fold covers the most labels, then is the smallest.
    assert choose_test_fold({1: {"x", "y"}, 2: {"x", "y"}, 3: {"x"}},
                                 {1: 50, 2: 35, 3: 45}) == 2


def clip(source: str, label: str, name: str, samples: np.ndarray, group: str = "") -> Clip:
    return Clip(source, label, name, samples.astype(np.float32), group or source, "test")


def test_duplicates_are_dropped_and_label_conflicts_removed():
    tone = 0.5 * np.sin(np.arange(800) / 5)
    noise = 0.5 * np.random.default_rng(0).uniform(-1, 1, 800)
    clips = [clip("a", "kick", "1", tone), clip("b", "kick", "2", tone),
             clip("a", "snare", "3", noise), clip("b", "clap", "4", noise)]
    kept, copies, conflicts = deduplicate(clips)
    assert [c.name for c in kept] == ["1"] and copies == 1 and conflicts == 2


def test_finish_trims_the_silent_tail_and_normalises():
    samples = np.concatenate([0.2 * np.ones(1000), 1e-5 * np.ones(5000)]).astype(np.float32)
    finished = finish(samples, keep_levels=False)
    assert len(finished) == 1000 and np.isclose(np.abs(finished).max(), PEAK)
    assert np.isclose(np.abs(finish(samples, keep_levels=True)).max(), 0.2)
    assert finish(np.zeros(5000, np.float32), keep_levels=False) is None


def test_written_set_layout(tmp_path):
    rng = np.random.default_rng(0)
    clips = [clip(source, label, f"{label}{k}", rng.uniform(-0.5, 0.5, 2400 * (k + 1)),
                  group="shared" if source in ("s1", "s2") else "")
             for source in ("s1", "s2", "s3", "s4")
             for label in ("kick", "snare")
             for k in range(2)]
    clips.append(clip("s4", "cowbell", "only", rng.uniform(-0.5, 0.5, 2400)))
    spec = SetSpec("drums", "test set", lambda cache, keep: ([], {}), min_groups=2)
    counts = write_set(spec, clips, {s: "CC0" for s in ("s1", "s2", "s3", "s4")},
                            tmp_path, num_folds=3, started=0.0)
    assert counts["labels"] == 2 and counts["clips"] == 16  # cowbell is in one group only
    with open(tmp_path / "drums" / "manifest.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["path", "label", "source", "fold", "split"]
    fold_of_source = {}
    for row in rows:
        assert (tmp_path / "drums" / row["path"]).is_file()
        assert row["path"] == f"audio/{row['source']}/{row['label']}/{row['path'].split('/')[-1]}"
        fold_of_source.setdefault(row["source"], set()).add((row["fold"], row["split"]))
    assert all(len(v) == 1 for v in fold_of_source.values())  # sources are never split
    assert fold_of_source["s1"] == fold_of_source["s2"]  # a group stays together
    assert {split for v in fold_of_source.values() for _, split in v} == {"train", "test"}
    info = soundfile.info(tmp_path / "drums" / rows[0]["path"])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    readme = (tmp_path / "drums" / "README.txt").read_text()
    assert "16 clips, 2 labels, 4 sources" in readme and "cowbell" in readme
    assert "shared = s1, s2" in readme and "s1, s2, s3, s4: CC0" in readme


def test_midi_notes_are_laid_out_one_per_slot(tmp_path):
    notes = [Note(40, 60, 100), Note(41, 64, 50)]
    write_midi(notes, tmp_path / "n.mid", slot=3.0, hold=2.0, channel=0)
    seconds, onsets, offs = 0.0, [], []
    for message in mido.MidiFile(tmp_path / "n.mid"):
        seconds += message.time
        if message.type == "note_on":
            onsets.append((round(seconds, 3), message.note, message.velocity))
        elif message.type == "note_off":
            offs.append(round(seconds, 3))
    assert onsets == [(0.0, 60, 100), (3.0, 64, 50)] and offs == [2.0, 5.0]


def test_instrument_notes_cover_each_range():
    notes = instrument_notes()
    per_label = len(NOTE_VELOCITIES) * PITCHES_PER_INSTRUMENT
    assert len(notes) == per_label * len(INSTRUMENTS)
    violin = [n for label, n in notes if label == "violin"]
    assert {n.program for n in violin} == {40}
    assert min(n.pitch for n in violin) == 55 and max(n.pitch for n in violin) == 100


def write_rcc(path, files: dict[str, bytes]) -> None:
    """A version-1 Qt resource with one folder `res` holding `files` (the first compressed)."""
    import zlib

    names = b"".join(struct.pack(">HI", len(n), 0) + n.encode("utf-16-be")
                     for n in ["res", *files])
    offsets, offset = [], 0
    for n in ["res", *files]:
        offsets.append(offset)
        offset += 6 + 2 * len(n)
    payload, data_offsets = b"", []
    for k, blob in enumerate(files.values()):
        stored = struct.pack(">I", len(blob)) + zlib.compress(blob) if k == 0 else blob
        data_offsets.append(len(payload))
        payload += struct.pack(">I", len(stored)) + stored
    tree = struct.pack(">IHII", 0, 2, 1, 1)  # root: a folder with one child (node 1)
    tree += struct.pack(">IHII", offsets[0], 2, len(files), 2)  # res/
    for k in range(len(files)):
        tree += struct.pack(">IHHHI", offsets[k + 1], 1 if k == 0 else 0, 0, 0, data_offsets[k])
    header_size = 20
    path.write_bytes(b"qres" + struct.pack(">IIII", 1, header_size, header_size + len(tree),
                                           header_size + len(tree) + len(payload))
                     + tree + payload + names)


def test_qt_resources_are_read(tmp_path):
    write_rcc(tmp_path / "a.rcc", {"cow.ogg": b"moo" * 50, "README": b"licence"})
    assert dict(qt_resources(tmp_path / "a.rcc")) == {"/res/cow.ogg": b"moo" * 50,
                                                           "/res/README": b"licence"}
    (tmp_path / "b.rcc").write_bytes(b"not a resource")
    with pytest.raises(PreparationError, match="b.rcc: not a Qt resource file"):
        list(qt_resources(tmp_path / "b.rcc"))


def test_gcompris_labels_keep_only_unambiguous_names():
    assert gcompris_label("instruments", "flute_traversiere") == "flute"
    assert gcompris_label("instruments", "violin") == "violin"
    assert gcompris_label("memory-sound", "LRBark_3_LA_cut") == "dog_bark"
    assert gcompris_label("memory-sound", "LRWeird_2_LA") is None


def test_command_line_rejects_unknown_sets(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--sets", "drums,birds"])
    assert "unknown set(s) birds" in capsys.readouterr().err


def test_the_same_recording_in_two_groups_is_reported():
    rng = np.random.default_rng(0)
    hit = rng.normal(size=8000) * np.exp(-np.arange(8000) / 800)
    other = rng.normal(size=8000) * np.exp(-np.arange(8000) / 3000)
    copy = 0.3 * np.concatenate([np.zeros(40), hit])[:8000]  # quieter, 2.5 ms late
    clips = [clip("kit_a", "snare", "hit", 0.5 * hit), clip("kit_b", "snare", "copy", copy),
             clip("kit_c", "snare", "other", 0.5 * other),
             clip("kit_a", "kick", "same_group", 0.5 * hit + 0.01 * other)]
    matches = cross_group_matches(clips, candidate_cosine=-1.0)
    assert [(a.name, b.name) for a, b, _ in matches] == [("hit", "copy")]
    assert matches[0][2] > 0.99 and waveform_match(hit, other) < 0.5
