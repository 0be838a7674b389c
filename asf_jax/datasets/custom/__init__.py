"""The TFDS dataset folder of your own labelled sounds (one builder, any number of names)."""
