"""Data: digit sources, the Moving MNIST generator, the one reader of sequence arrays (``sequences``)
and the MindSpore input pipeline (``pipeline``, the only module that imports MindSpore)."""
