"""Networks (ConvLSTM cell, encoder-forecasters) and their parameter/FLOP counts."""
