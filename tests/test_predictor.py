"""src/predictor.py: the one batch predictor (fixed batch, padding cut, refusals) on fake engines."""
import numpy as np
import pytest

from src.errors import DataError, UserError


@pytest.fixture(scope="module")
def device():
    """Set the device before any kernel runs in this process (MindSpore refuses it later)."""
    from src.config import load_config
    from src.device import init_device
    from tests.exported_models import SMALL

    init_device(load_config([], config_path=SMALL))


def test_predictor_pads_the_last_batch_to_the_fixed_size(device):
    import mindspore as ms

    from src.predictor import BatchPredictor, mindspore_runner

    seen = []

    def forward(x):  # (B, T_in, 1, H, W) -> (B, 2, 1, H, W): frame 0 and frame 0 + 1
        arr = x.asnumpy()
        seen.append(arr.shape[0])
        return ms.Tensor(np.concatenate([arr[:, :1], arr[:, :1] + 1.0], axis=1))

    predictor = BatchPredictor(mindspore_runner(forward), 2, (3, 1, 4, 4), (2, 1, 4, 4))
    inputs = np.random.default_rng(0).random((3, 3, 1, 4, 4)).astype(np.float32)
    out = predictor.predict(inputs)
    assert seen == [2, 2]  # the single last sequence was padded to a batch of 2
    assert out.shape == (3, 2, 1, 4, 4)
    np.testing.assert_array_equal(out[:, 0], inputs[:, 0])
    np.testing.assert_array_equal(out[:, 1], inputs[:, 0] + 1.0)


def test_fixed_batch_predictor_pads_the_last_batch_and_cuts_the_padding(device):
    """As src.evaluation.evaluate calls it: batches of eval_batch_size, then a smaller last one."""
    from src.predictor import BatchPredictor, mindspore_runner

    shapes = []

    def forward(x):  # mindspore Tensor in, Tensor out: prediction = index marker of each row
        shapes.append(tuple(x.shape))
        return x[:, :1] * 0 + x[:, :1, :, :1, :1]

    predict = BatchPredictor(mindspore_runner(forward), 3, (2, 1, 4, 4), (1, 1, 4, 4))
    batch = np.arange(3, dtype=np.float32)[:, None, None, None, None] * np.ones((3, 2, 1, 4, 4), np.float32)
    assert predict(batch).shape == (3, 1, 1, 4, 4)
    last = predict(batch[:1] + 7)
    assert shapes == [(3, 2, 1, 4, 4), (3, 2, 1, 4, 4)]  # one input shape: compiled once
    assert last.shape == (1, 1, 1, 4, 4) and np.all(last == 7)


def _numpy_predictor(rule, batch_size=4, frames=(3, 2)):
    from src.predictor import BatchPredictor

    return BatchPredictor(rule, batch_size, (frames[0], 1, 8, 8), (frames[1], 1, 8, 8), name="m.onnx",
                          engine="onnxruntime")


def test_more_sequences_than_one_batch_are_run_in_fixed_batches():
    calls = []

    def rule(batch):  # numpy (4, 3, 1, 8, 8) -> (4, 2, 1, 8, 8): the last frame, twice
        calls.append(batch.shape)
        return np.repeat(batch[:, -1:], 2, axis=1)

    inputs = np.random.default_rng(1).random((9, 3, 1, 8, 8)).astype(np.float32)
    out = _numpy_predictor(rule).predict(inputs)
    assert calls == [(4, 3, 1, 8, 8)] * 3  # 4 + 4 + 1 padded to 4
    np.testing.assert_array_equal(out, np.repeat(inputs[:, -1:], 2, axis=1))
    assert out.dtype == np.float32
    assert _numpy_predictor(rule).predict(inputs[:0]).shape == (0, 2, 1, 8, 8)


def test_non_finite_predictions_are_refused_in_one_line():
    from src.predictor import PredictionError

    predictor = _numpy_predictor(lambda b: np.full((len(b), 2, 1, 8, 8), np.nan, np.float32))
    with pytest.raises(PredictionError, match="m.onnx predicts NaN/inf") as err:
        predictor.predict(np.zeros((1, 3, 1, 8, 8), np.float32))
    assert "\n" not in str(err.value) and isinstance(err.value, UserError)


def test_inputs_of_another_shape_are_refused():
    predictor = _numpy_predictor(lambda b: b[:, :2])
    with pytest.raises(DataError, match=r"shape \(2, 4, 1, 8, 8\); the model expects \(N,\) \+ \(3, 1, 8, 8\)"):
        predictor.predict(np.zeros((2, 4, 1, 8, 8), np.float32))


def test_max_abs_difference():
    from src.predictor import max_abs_difference

    assert max_abs_difference(np.zeros((2, 3)), np.full((2, 3), -0.25)) == 0.25
    assert max_abs_difference(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_difference(np.zeros(2), np.zeros(3))


# ---------------------------------------------------------------- rollout past the trained horizon

def _shift_rule(t_out):
    """A model of T_out frames: frame k = the last input frame + 0.3 * (k + 1) (exceeds 1: feedback is clipped)."""
    return lambda batch: batch[:, -1:] + 0.3 * np.arange(1, t_out + 1, dtype=np.float32)[None, :, None, None, None]


def _composed_by_hand(rule, inputs, chunks):
    """Chunks predicted one after the other from the last T_in observed + clipped predicted frames."""
    frames, out = inputs, []
    for _ in range(chunks):
        chunk = rule(frames[:, -inputs.shape[1]:])
        out.append(chunk)
        frames = np.concatenate([frames, np.clip(chunk, 0, 1)], axis=1)
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("t_in, t_out, lead", [(3, 2, 7), (2, 4, 8), (3, 2, 2), (3, 4, 3), (3, 2, 1)])
def test_a_rollout_equals_its_chunks_composed_by_hand(t_in, t_out, lead):
    from src.predictor import RolledOut

    inputs = np.random.default_rng(3).random((5, t_in, 1, 8, 8)).astype(np.float32)
    calls = []
    rule = _shift_rule(t_out)

    def counted(batch):
        calls.append(batch.shape[0])
        return rule(batch)

    rolled = RolledOut(_numpy_predictor(counted, batch_size=4, frames=(t_in, t_out)), lead)
    out = rolled.predict(inputs)
    chunks = -(-lead // t_out)
    assert out.shape == (5, lead, 1, 8, 8) and rolled.output_shape == (lead, 1, 8, 8) and rolled.chunks == chunks
    np.testing.assert_allclose(out, _composed_by_hand(rule, inputs, chunks)[:, :lead], rtol=0, atol=1e-6)
    assert len(calls) == 2 * chunks  # 5 sequences = 2 fixed batches per chunk
    assert out.max() > 1.0  # the returned frames are the model's own, only the fed-back ones are clipped


def test_a_rollout_of_output_frames_is_the_model_itself():
    from src.predictor import for_lead_frames

    predictor = _numpy_predictor(_shift_rule(2))
    assert for_lead_frames(predictor, 2) is predictor
    inputs = np.random.default_rng(4).random((3, 3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(for_lead_frames(predictor, 1).predict(inputs), predictor.predict(inputs)[:, :1])


def test_the_context_of_a_later_chunk_is_the_last_input_frames():
    """T_in 3, T_out 2: the second chunk sees observed frame 3 and predicted frames 1-2, nothing older."""
    from src.predictor import RolledOut

    seen = []

    def rule(batch):
        seen.append(batch.copy())
        return np.full((len(batch), 2, 1, 8, 8), 0.5, np.float32)

    inputs = np.stack([np.full((1, 8, 8), v, np.float32) for v in (0.1, 0.2, 0.3)])[None]  # (1, 3, 1, 8, 8)
    RolledOut(_numpy_predictor(rule, batch_size=1), 4).predict(inputs)
    assert [float(f.mean()) for f in seen[1][0]] == pytest.approx([0.3, 0.5, 0.5])


def test_a_model_of_fewer_output_channels_is_not_rolled_out():
    """target_channels: the predictions cannot be read back as the next chunk's input frames."""
    from src.errors import DataError
    from src.predictor import BatchPredictor, RolledOut

    rule = lambda batch: _shift_rule(2)(batch[:, :, :1])  # channel 0 of 3  # noqa: E731
    fewer = BatchPredictor(rule, 1, (3, 3, 8, 8), (2, 1, 8, 8), name="m.onnx", engine="onnxruntime")
    with pytest.raises(DataError, match="predicts frames of 1x8x8 from frames of 3x8x8"):
        RolledOut(fewer, 4)
    assert RolledOut(fewer, 1).predict(np.zeros((1, 3, 3, 8, 8), np.float32)).shape == (1, 1, 1, 8, 8)


@pytest.mark.parametrize("lead", [0, -2, 2.5, True])
def test_lead_frames_must_be_a_positive_integer(lead):
    from src.predictor import RolledOut

    with pytest.raises(ValueError, match="lead_frames must be a positive integer"):
        RolledOut(_numpy_predictor(_shift_rule(2)), lead)
