"""The one batch predictor: any number of sequences through a model that runs a fixed batch.

An exported graph (MindIR, ONNX) has a fixed batch size, and a compiled MindSpore network would compile
again for another one, so a smaller last batch is padded with copies of its last sequence. Engines:
``mindspore`` (a network or its compiled forward), ``mindir`` (GraphCell, graph mode) and ``onnxruntime``
(CPU session, optional dependency from requirements-onnx.txt; no MindSpore needed).
"""
# MindSpore and onnxruntime are imported inside functions: each engine loads only its own runtime.
import sys

import numpy as np

from src.errors import DataError, UserError, first_line
from src.export import ModelFileError
from src.export.model_info import check_model_file, model_input_shape, model_output_shape


class PredictionError(UserError):
    """The model produced NaN or infinite predictions."""


class EngineMissing(UserError):
    """The package that runs this kind of model file is not installed."""


def compiled_forward(net, mode):
    """``net``'s forward, compiled once with ``mindspore.jit`` when ``mode`` is "graph"."""
    import mindspore as ms

    def forward(inputs):
        return net(inputs)  # (B, T_out, C, H, W)

    return ms.jit(forward) if mode == "graph" else forward


def mindspore_runner(forward):
    """numpy -> numpy around ``forward`` (mindspore Tensor -> Tensor)."""
    import mindspore as ms

    return lambda batch: forward(ms.Tensor(batch)).asnumpy()


def load_mindir(path):
    """``mindspore.load`` + ``nn.GraphCell`` in graph mode; ModelFileError if it cannot be loaded."""
    import mindspore as ms
    from mindspore import nn

    check_model_file(path, "MINDIR")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        return nn.GraphCell(ms.load(path))
    except (RuntimeError, ValueError, TypeError) as err:
        raise ModelFileError(f"{path} cannot be loaded by MindSpore ({first_line(err)}); export it again "
                             "with export.py") from None


def import_onnxruntime():
    """The onnxruntime module, or EngineMissing naming the requirements file that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise EngineMissing(f"running an ONNX model needs ONNX Runtime, which is not installed for {sys.executable}; "
                            "install it with `python -m pip install -r requirements-onnx.txt`") from None
    return onnxruntime


def onnx_session(path, threads=0):
    """An ONNX Runtime CPU session of ``path`` (``threads`` intra-op threads; 0: its default)."""
    ort = import_onnxruntime()
    check_model_file(path, "ONNX")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's errors derive from Exception only
        raise ModelFileError(f"{path} cannot be loaded by ONNX Runtime ({first_line(err)}); export it again with "
                             "export.py --file_format ONNX") from None


class BatchPredictor:
    """Runs ``run_batch`` (numpy -> numpy) on batches of exactly ``batch_size`` sequences; ``input_shape``
    and ``output_shape`` are one sequence's, (T_in, C, H, W) and (T_out, C, H, W). Refuses NaN/inf output."""

    def __init__(self, run_batch, batch_size, input_shape, output_shape, name="", engine="mindspore"):
        self.run_batch, self.batch_size, self.name, self.engine = run_batch, int(batch_size), name, engine
        self.input_shape, self.output_shape = tuple(input_shape), tuple(output_shape)

    @classmethod
    def from_network(cls, forward, cfg, batch_size, name=""):
        return cls(mindspore_runner(forward), batch_size, model_input_shape(cfg, batch_size)[1:],
                   model_output_shape(cfg, batch_size)[1:], name, "mindspore")

    @classmethod
    def from_model(cls, info, threads=0):
        if info.file_format == "ONNX":
            session = onnx_session(info.path, threads)
            run_batch, engine = (lambda batch: session.run(None, {info.input_name: batch})[0]), "onnxruntime"
        else:
            run_batch, engine = mindspore_runner(load_mindir(info.path)), "mindir"
        return cls(run_batch, info.batch_size, info.input_shape[1:], info.output_shape[1:], info.path, engine)

    def predict(self, inputs):
        """inputs (N, T_in, C, H, W) float32 in [0, 1] -> predictions (N, T_out, C, H, W) float32."""
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        if inputs.shape[1:] != self.input_shape:
            raise DataError(f"input batch has shape {inputs.shape}; the model expects (N,) + {self.input_shape}")
        outputs = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start:start + self.batch_size]  # (b, T_in, C, H, W)
            count = len(batch)
            if count < self.batch_size:  # copies of the last sequence: the padding holds valid frames
                batch = np.concatenate([batch, np.repeat(batch[-1:], self.batch_size - count, axis=0)])
            out = np.asarray(self.run_batch(batch), dtype=np.float32)  # (batch_size, T_out, C, H, W)
            if not np.isfinite(out).all():
                raise PredictionError(f"model {self.name} predicts NaN/inf values (training diverged?); use an "
                                      "earlier checkpoint")
            outputs.append(out[:count])
        return np.concatenate(outputs) if outputs else np.zeros((0,) + self.output_shape, dtype=np.float32)

    __call__ = predict  # the predict_fn of src.evaluation.evaluate


def roll_out(predict_chunk, inputs, lead_frames):
    """``lead_frames`` forecast frames from a model that maps T_in frames to a fixed chunk of T_out.

    The first chunk is the model's own output for ``inputs`` (N, T_in, C, H, W); every next chunk is predicted
    from the last T_in frames of observed + predicted frames, the predictions fed back clipped to [0, 1] (the
    range the model was trained on). Each chunk is one forward of the network from a zero state: the recurrent
    state of the previous chunk is not carried over (the encoder re-reads the frames), so skill past the trained
    horizon is what the frames alone carry. Returns (N, lead_frames, C, H, W) float32, the chunks as predicted."""
    t_in = inputs.shape[1]
    context = np.asarray(inputs, dtype=np.float32)  # (N, T_in, C, H, W)
    chunks = [np.asarray(predict_chunk(context), dtype=np.float32)]  # [(N, T_out, C, H, W)]
    while sum(chunk.shape[1] for chunk in chunks) < lead_frames:  # the context is built only when it is read
        context = np.concatenate([context, np.clip(chunks[-1], 0.0, 1.0)], axis=1)[:, -t_in:]  # (N, T_in, C, H, W)
        chunks.append(np.asarray(predict_chunk(context), dtype=np.float32))
    return np.concatenate(chunks, axis=1)[:, :lead_frames]


class RolledOut:
    """A BatchPredictor forecasting ``lead_frames`` frames by :func:`roll_out` (any engine); ``chunks`` is the
    number of forwards per batch."""

    def __init__(self, predictor, lead_frames):
        if isinstance(lead_frames, bool) or not isinstance(lead_frames, (int, np.integer)) or lead_frames < 1:
            raise ValueError(f"lead_frames must be a positive integer, got {lead_frames!r}")
        past = lead_frames > predictor.output_shape[0]  # a shorter forecast is the first chunk, cut
        if past and tuple(predictor.output_shape[1:]) != tuple(predictor.input_shape[1:]):  # target_channels
            raise DataError(f"model {predictor.name} predicts frames of {_shape_text(predictor.output_shape)} from "
                            f"frames of {_shape_text(predictor.input_shape)} (target_channels): a roll-out past its "
                            "output_frames feeds its predictions back as inputs, which needs every channel; use "
                            "lead_frames up to output_frames")
        self.predictor, self.lead_frames = predictor, int(lead_frames)
        self.batch_size, self.name, self.engine = predictor.batch_size, predictor.name, predictor.engine
        self.input_shape = predictor.input_shape
        self.output_shape = (self.lead_frames,) + tuple(predictor.output_shape[1:])
        self.chunks = -(-self.lead_frames // predictor.output_shape[0])

    def predict(self, inputs):
        return roll_out(self.predictor.predict, inputs, self.lead_frames)

    __call__ = predict


def _shape_text(shape):  # (T, C, H, W) -> "CxHxW"
    return "x".join(map(str, shape[1:]))


def for_lead_frames(predictor, lead_frames):
    """``predictor`` itself when it forecasts ``lead_frames`` frames in one forward, else its RolledOut."""
    return predictor if lead_frames == predictor.output_shape[0] else RolledOut(predictor, lead_frames)


def max_abs_difference(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.abs(a - b).max()) if a.size else 0.0
