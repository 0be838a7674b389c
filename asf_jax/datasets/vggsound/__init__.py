"""The VGG-Sound TFDS dataset folder (`tfds new` layout): builder, dummy data."""
