"""ConvLSTM video prediction on Moving MNIST (MindSpore)."""
