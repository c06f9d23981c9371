"""convoy: a CPU inference runtime for ONNX CNNs, with an onnxruntime-style Python API.

Switching from ONNX Runtime is one import::

    import convoy as ort                      # was: import onnxruntime as ort
    sess = ort.InferenceSession("resnet18.onnx")
    name = sess.get_inputs()[0].name
    (logits,) = sess.run(None, {name: x})     # x: float32 ndarray, NCHW

Images go through the same C++ preprocessing as ``convoy run MODEL IMAGE``::

    x = convoy.preprocess(sess, ["cat.jpg", "dog.png"])   # per the model's convoy.* metadata

``convoy.distributed`` spreads scoring over a Dask cluster.
"""

import os as _os

from . import _core
from ._core import Error

__all__ = [
    "Error",
    "InferenceSession",
    "ModelMetadata",
    "NodeArg",
    "SessionOptions",
    "get_available_providers",
    "load_model",
    "preprocess",
    "__version__",
]

__version__ = _core.version()
Error.__module__ = "convoy"
Error.__doc__ = "Every error convoy reports (a RuntimeError); the message is the one `convoy run` prints."

# onnxruntime's names for the element types convoy reports as numpy dtype names.
_ONNX_TYPE = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "int8": "tensor(int8)",
    "int16": "tensor(int16)",
    "int32": "tensor(int32)",
    "int64": "tensor(int64)",
    "uint8": "tensor(uint8)",
    "uint16": "tensor(uint16)",
    "uint32": "tensor(uint32)",
    "uint64": "tensor(uint64)",
    "bool": "tensor(bool)",
    "string": "tensor(string)",
}


class NodeArg:
    """An input or output as onnxruntime describes it: ``name``, ``shape`` (ints, ``None`` where
    the model leaves a dimension dynamic) and ``type`` (``'tensor(float)'``)."""

    __slots__ = ("name", "shape", "type")

    def __init__(self, name, shape, type):  # noqa: A002 (onnxruntime's attribute name)
        self.name = name
        self.shape = shape
        self.type = type

    @classmethod
    def _from_info(cls, info):
        shape = [None if d < 0 else int(d) for d in info.shape]
        return cls(info.name, shape, _ONNX_TYPE.get(info.dtype, "tensor(%s)" % info.dtype))

    def __repr__(self):
        return "NodeArg(name='%s', type='%s', shape=%s)" % (self.name, self.type, self.shape)


class ModelMetadata:
    """What ``InferenceSession.get_modelmeta()`` returns (onnxruntime's attribute names)."""

    def __init__(self, model):
        self.producer_name = model.producer
        self.custom_metadata_map = dict(model.metadata)
        self.opset = model.opset
        self.graph_name = ""
        self.domain = ""
        self.description = ""
        self.version = 0


class SessionOptions:
    """Accepted where onnxruntime takes its SessionOptions. Only ``intra_op_num_threads`` (0: all
    hardware threads) changes anything; other attributes may be set and are ignored."""

    def __init__(self):
        self.intra_op_num_threads = 0


def get_available_providers():
    return ["CPUExecutionProvider"]


def load_model(path_or_bytes, optimize=True):
    """Load an ONNX model (a path or the file's bytes) as a ``convoy._core.Model``, which
    sessions and ``preprocess`` accept; one model may back many sessions."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return _core.Model.from_bytes(bytes(path_or_bytes), "<memory>", optimize)
    return _core.Model.load(_os.fspath(path_or_bytes), optimize)


def _as_model(model_or_path):
    if isinstance(model_or_path, _core.Model):
        return model_or_path
    if isinstance(model_or_path, InferenceSession):
        return model_or_path._model
    return load_model(model_or_path)


class InferenceSession:
    """``InferenceSession(path_or_bytes, sess_options=None, providers=None, threads=None)``.

    ``threads``: worker threads per run (default: ``sess_options.intra_op_num_threads``, else
    all hardware threads). ``providers`` is accepted for onnxruntime compatibility; convoy runs
    on the CPU. ``run`` may be called from several Python threads at once: each concurrent call
    gets its own plan arena (the weights are shared), and the GIL is released while it runs.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, *, threads=None,
                 optimize=True):
        del providers, provider_options  # one provider: the CPU
        if threads is None:
            threads = getattr(sess_options, "intra_op_num_threads", 0) or 0
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise Error("InferenceSession: threads must be a non-negative int or None, got %r" % (threads,))
        self._model = _as_model(path_or_bytes)
        self._session = _core.Session(self._model, threads)
        self._inputs = [NodeArg._from_info(t) for t in self._model.inputs]
        self._outputs = [NodeArg._from_info(t) for t in self._model.outputs]

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        return []

    def get_modelmeta(self):
        return ModelMetadata(self._model)

    def get_providers(self):
        return ["CPUExecutionProvider"]

    @property
    def threads(self):
        """Threads each run uses."""
        return self._session.threads

    def run(self, output_names, input_feed, run_options=None):
        """Run the model. ``output_names``: list of names, or None for all outputs (model order).
        ``input_feed``: {input name: float32 numpy array}. Returns a list of float32 arrays."""
        del run_options
        return self._session.run(output_names, input_feed)


def preprocess(model, paths, *, size=None, mean=None, std=None, scale=None, bgr=False, return_errors=False):
    """Decode and normalise image files into one float32 NCHW array, exactly as
    ``convoy run MODEL IMAGE...`` does (the model's convoy.* metadata, ImageNet defaults), so
    the logits match the CLI's bit for bit.

    ``model``: an InferenceSession, a model from ``load_model`` or a path. ``size``: (H, W) when
    the model leaves it dynamic; ``mean``/``std``/``scale``/``bgr``: as the CLI's flags.
    A file that cannot be read or decoded raises ``convoy.Error`` naming it, unless
    ``return_errors`` is set: then the result is ``(x, errors)`` with a zero row and the message
    in ``errors[i]`` for each failed file (``None`` for the others).
    """
    if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
        paths = [paths]
    paths = [_os.fsdecode(p) for p in paths]
    if size is not None:
        size = tuple(int(v) for v in size)
        if len(size) != 2:
            raise Error("preprocess: size must be (height, width), got %r" % (size,))
    mean = None if mean is None else [float(v) for v in mean]
    std = None if std is None else [float(v) for v in std]
    scale = None if scale is None else float(scale)
    return _core.preprocess(_as_model(model), paths, size, mean, std, scale, bool(bgr), bool(return_errors))
