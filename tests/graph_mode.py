"""Test helper: a network's functions compiled with ``mindspore.jit`` in GRAPH_MODE give what they give eagerly."""
import numpy as np

import mindspore as ms


def assert_graph_mode_matches_pynative(calls, rtol=1e-4, atol=1e-5):
    """``calls``: (function, args) pairs. Each is run eagerly first (the caller's PYNATIVE mode), then compiled
    with ``ms.jit`` in GRAPH_MODE on the same arguments; the outputs must agree."""
    eager = [function(*args).asnumpy() for function, args in calls]
    ms.set_context(mode=ms.GRAPH_MODE)
    for (function, args), expected in zip(calls, eager):
        @ms.jit
        def compiled(*inputs):
            return function(*inputs)

        np.testing.assert_allclose(compiled(*args).asnumpy(), expected, rtol=rtol, atol=atol)
