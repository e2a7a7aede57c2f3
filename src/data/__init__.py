"""Data: digit sources (embedded synthetic glyphs or MNIST), the on-the-fly Moving MNIST
generator, the published test set reader, and the MindSpore input pipeline.

Modules: ``idx`` (MNIST IDX files), ``digits`` (procedural glyphs), ``moving_mnist``
(generator), ``test_set`` (mnist_test_seq.npy), ``pipeline`` (datasets and batching; the only
module that imports MindSpore, and only when a dataset is built).
"""
