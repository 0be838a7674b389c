"""Embed class names for the LEP head: `python scripts/embed_labels.py --help` for the flags.

Kept for existing commands; the logic is `asf_jax.embed_labels` (also
`python -m asf_jax.embed_labels` and `asf-jax-embed-labels`).
"""

from asf_jax.embed_labels import main

if __name__ == "__main__":
    main()
