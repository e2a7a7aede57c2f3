"""Data: digit sources, the Moving MNIST generator, the one reader of sequence arrays (``sequences``), the
converter of image folders, HDF5 and NetCDF files into such arrays (``convert``) and the MindSpore input
pipeline (``pipeline``, the only module that imports MindSpore)."""
