"""VGG-Sound as a TFDS dataset of log-mel clips, built from audio the user downloaded.

Local build, no TensorFlow needed (array_record, parallel over all cores):

    python -m asf_jax.datasets.build --manual_dir ~/vggsound --data_dir ~/tensorflow_datasets

Apache Beam build, no TensorFlow needed either (`pip install 'asf_jax[beam]'`): the same command
with TFDS's Beam pipeline options, on one machine or on a cluster:

    python -m asf_jax.datasets.build --manual_dir ~/vggsound --data_dir ~/tensorflow_datasets \\
        --beam_pipeline_options=runner=DirectRunner,direct_num_workers=8,\\
    direct_running_mode=multi_processing
    python -m asf_jax.datasets.build --manual_dir /mnt/vggsound --data_dir /mnt/tfds \\
        --beam_pipeline_options="runner=DataflowRunner,project=PROJECT,region=REGION,\\
    temp_location=gs://BUCKET/tmp,extra_package=dist/asf_jax-0.1.0-py3-none-any.whl"

A Beam build writes the records, build report and label index of a local build
(tests/test_beam_build.py compares the in-process DirectRunner with a local build; the
multi_processing DirectRunner gave the same files; no cluster runner has been tried). Under
Beam the workers extract the clips (`beam_clips`), TFDS's Beam writer shards the array_record
files, and the launcher reads the workers' per-clip outcomes back into the report. What does not
work:

* `tfds build` (TFDS's command line) imports TensorFlow at start, even for array_record; launch
  with `python -m asf_jax.datasets.build` as above.
* A data dir on a bucket (`gs://...`): array_record writes local files only ("RuntimeError:
  open() failed: No such file or directory; opening gs://...; Failed to create the file
  header"). The manual dir is read with plain file I/O (soundfile, ffmpeg) too, so both must be
  paths that the launcher and every worker see, e.g. a Filestore/NFS or gcsfuse mount; the
  workers get asf_jax as a wheel made with `pip wheel --no-deps -w dist .`.

A local build, unlike a Beam one, sorts each split with TFDS's shuffler, which spills a split of
more than 1 GB of serialized examples (about 2,000 10-s float32 clips) to disk; `spill` makes it
do so with plain files, so that the whole of VGG-Sound builds without TensorFlow too.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from asf_jax.datasets import manual_dir
from asf_jax.datasets.logmel_builder import LogmelBuilder

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
VGG-Sound audio cannot be downloaded by TFDS (YouTube clips). Put in the manual directory:

* the clip list `vggsound.csv` from https://www.robots.ox.ac.uk/~vgg/data/vggsound/ (rows
  `youtube_id,start_seconds,label,split`, no header), or the per-split lists `train.csv` /
  `test.csv` (rows `"<youtube_id>_<start:06d>.mp4",label`). Pickled annotations (`.pkl`) are never
  read: unpickling can execute code.
* the audio, one file per clip named `<youtube_id>_<start_seconds:06d>.<ext>` (wav, flac, ogg,
  mp3, m4a or mp4; M4A/MP4 need ffmpeg), anywhere below the manual directory.
* optionally `classes.txt`, one class name per line in class-id order; without it the 309
  VGG-Sound classes in sorted order are used.

Clips that are missing or unreadable are skipped and listed in `build_report.json`.
"""

CITATION = """\
@inproceedings{chen2020vggsound,
  title={VGGSound: A Large-scale Audio-Visual Dataset},
  author={Chen, Honglie and Xie, Weidi and Vedaldi, Andrea and Zisserman, Andrew},
  booktitle={ICASSP}, year={2020}}
@inproceedings{kazakos2021slowfast,
  title={Slow-Fast Auditory Streams for Audio Recognition},
  author={Kazakos, Evangelos and Nagrani, Arsha and Zisserman, Andrew and Damen, Dima},
  booktitle={ICASSP}, year={2021}}
"""


class Builder(LogmelBuilder):
    """VGG-Sound log-mel clips (whole-clip log-mel, plus the two reference views for test)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Log-mels of the Slow-Fast VGG-Sound recipe, with a build report."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    DESCRIPTION = ("VGG-Sound audio as log-mel spectrograms (time, mel) for the Slow-Fast "
                   "auditory network.")
    HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/vggsound/"
    CITATION = CITATION

    def scan(self, root: Path) -> tuple[list[str], manual_dir.Manifest]:
        """`classes.txt` (else the 309 shipped classes), and the clips the CSV list(s) give."""
        names = manual_dir.read_class_names(root)
        return names, manual_dir.scan(root, names)
