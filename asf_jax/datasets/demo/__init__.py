"""Synthesise a small VGG-Sound-shaped demo dataset: 10 everyday sound classes, made procedurally.

The output follows the VGG-Sound manual-download layout that the TFDS builder reads:

    DIR/vggsound.csv   youtube_id,start_seconds,label,split   (no header, like the real file)
    DIR/classes.txt    the class names, sorted, one per line
    DIR/README.txt     what was generated, and which files and rows are broken on purpose
    DIR/audio/**/<youtube_id>_<start_seconds:06d>.<ext>   (nested folders: the builder searches)

Clips vary in length, sample rate, channel count and container (WAV, FLAC, OGG, MP3, and M4A when
ffmpeg is installed), carry background noise at a random SNR, and one is digital silence. A handful
of files and CSV rows are broken in distinct ways so that the builder's skip-and-count paths run.
The same seed always gives the same CSV and the same decoded audio.

    python -m asf_jax.datasets.demo --out demo/manual --seed 0

(`asf-jax-demo-dataset` and `python scripts/make_demo_dataset.py` are the same command.)
`plan` decides what the dataset holds, `sounds` synthesises each class from `signals`'
building blocks, `dataset` writes it all, `cli` is the command line.
"""

from asf_jax.datasets.demo.dataset import BROKEN_REASONS, DemoSummary, make_demo_dataset
from asf_jax.datasets.demo.sounds import CLASS_NAMES

__all__ = ["BROKEN_REASONS", "CLASS_NAMES", "DemoSummary", "make_demo_dataset"]
