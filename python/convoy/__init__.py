"""convoy: a CPU inference runtime for ONNX CNNs, with an onnxruntime-style Python API.

Switching from ONNX Runtime is one import::

    import convoy as ort                      # was: import onnxruntime as ort
    sess = ort.InferenceSession("resnet18.onnx")
    name = sess.get_inputs()[0].name
    (logits,) = sess.run(None, {name: x})     # x: float32 ndarray, NCHW

Images go through the same C++ preprocessing as ``convoy run MODEL IMAGE``::

    x = convoy.preprocess(sess, ["cat.jpg", "dog.png"])   # per the model's convoy.* metadata

Dense scoring (docs/DENSE.md) runs the model with its fully-connected head converted to
convolutions over a whole image, as ``convoy dense MODEL IMAGE`` does::

    r = convoy.dense("fashion_cnn.onnx", "collage.png")   # r.maps[0]: float32 [N, K, rows, cols]

``convoy.distributed`` spreads scoring over a Dask cluster.
"""

import dataclasses as _dataclasses
import math as _math
import os as _os

import numpy as _np

from . import _core
from ._core import Error

__all__ = [
    "DenseResult",
    "Error",
    "InferenceSession",
    "ModelMetadata",
    "NodeArg",
    "SessionOptions",
    "get_available_providers",
    "dense",
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


def load_model(path_or_bytes, optimize=True, fc_to_conv=False):
    """Load an ONNX model (a path or the file's bytes) as a ``convoy._core.Model``, which
    sessions and ``preprocess`` accept; one model may back many sessions. ``fc_to_conv``
    converts the fully-connected head to convolutions (dense scoring, docs/DENSE.md); the
    model's ``training_size`` and ``dense_stride`` then give the score-map geometry."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return _core.Model.from_bytes(bytes(path_or_bytes), "<memory>", optimize, fc_to_conv)
    return _core.Model.load(_os.fspath(path_or_bytes), optimize, fc_to_conv)


def _as_model(model_or_path, fc_to_conv=False):
    if isinstance(model_or_path, _core.Model):
        return model_or_path
    if isinstance(model_or_path, InferenceSession):
        return model_or_path._model
    return load_model(model_or_path, fc_to_conv=fc_to_conv)


class InferenceSession:
    """``InferenceSession(path_or_bytes, sess_options=None, providers=None, threads=None)``.

    ``threads``: worker threads per run (default: ``sess_options.intra_op_num_threads``, else
    all hardware threads). ``providers`` is accepted for onnxruntime compatibility; convoy runs
    on the CPU. ``run`` may be called from several Python threads at once: each concurrent call
    gets its own plan arena (the weights are shared), and the GIL is released while it runs.

    ``fc_to_conv=True`` loads the model with its fully-connected head converted to convolutions
    (for ``convoy.dense``; the input's height and width become dynamic). It applies to a path or
    bytes; a model from ``load_model`` keeps the form it was loaded in.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, *, threads=None,
                 optimize=True, fc_to_conv=False):
        del providers, provider_options  # one provider: the CPU
        if threads is None:
            threads = getattr(sess_options, "intra_op_num_threads", 0) or 0
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise Error("InferenceSession: threads must be a non-negative int or None, got %r" % (threads,))
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            self._model = load_model(path_or_bytes, optimize, fc_to_conv)
        elif isinstance(path_or_bytes, (_core.Model, InferenceSession)):
            self._model = _as_model(path_or_bytes)
        else:
            self._model = load_model(path_or_bytes, optimize, fc_to_conv)
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


# ---------------------------------------------------------------- dense scoring


def _model_name(model):
    """The model file's base name, which error messages start with (as the CLI's)."""
    return model.path.rsplit("/", 1)[-1]


def _shape_string(shape):
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def _labels(model):
    """Class names from the model's convoy.labels metadata, or None."""
    text = model.metadata.get("convoy.labels")
    if not text:
        return None
    labels = [l.rstrip("\r") for l in text.split("\n")]
    if labels and labels[-1] == "":
        labels.pop()
    return labels or None


def _llround(v):
    """C's llround for v >= 0 (halves away from zero; Python's round() goes to even)."""
    r = _math.floor(v)
    return int(r + 1 if v - r >= 0.5 else r)


@_dataclasses.dataclass
class DenseResult:
    """What ``convoy.dense`` returns; the fields are those of ``convoy dense --json``.

    maps            one float32 array [N, K, rows, cols] per scale (``convoy dense --output``)
    scales          one dict per scale: ``scale`` (y, x: input pixels per image pixel),
                    ``input_size``, ``map_size``, ``row_origins`` / ``col_origins`` (top-left
                    pixel of each cell's crop in the scale's input), ``image_row_origins`` /
                    ``image_col_origins`` and ``image_crop_size`` (the same in image pixels)
    crop_size       the training size (H, W): one cell is one crop of this size
    network_stride  of the conv/pool stack
    stride          of the output grid (network_stride / passes**0.5)
    passes          shifted passes per scale
    image_size      (H, W) of the image file, None for an array input
    labels          class names from the model's convoy.labels metadata, or None
    """

    maps: list
    scales: list
    crop_size: tuple
    network_stride: int
    stride: int
    passes: int
    image_size: tuple
    labels: list

    @property
    def scores(self):
        """The score map of a single-scale result."""
        if len(self.maps) != 1:
            raise Error("DenseResult.scores: %d scales; use .maps[s]" % len(self.maps))
        return self.maps[0]


def _dense_session(model, threads):
    if isinstance(model, InferenceSession):
        return model
    return InferenceSession(model, threads=threads, fc_to_conv=True)


def _dense_geometry(model, stride):
    """(crop_h, crop_w, network stride, output stride, k) with the CLI's checks."""
    name = _model_name(model)
    if len(model.inputs) != 1 or not model.outputs:
        raise Error(name + ": dense scoring needs a model with one image input and a score output")
    inp = model.inputs[0]
    if inp.dtype != "float32" or len(inp.shape) != 4:
        raise Error("%s: input '%s' %s (%s) is not a float32 NCHW image" % (name, inp.name, _shape_string(inp.shape),
                                                                            inp.dtype))
    crop_h, crop_w = (int(v) for v in model.training_size[:2])
    net = int(model.dense_stride)
    s = net if stride is None or stride == "auto" else stride
    if isinstance(s, bool) or not isinstance(s, int) or s < 1:
        raise Error("%s: stride must be 'auto' or a positive int, got %r" % (name, stride))
    if s > net or net % s != 0:
        ok = ", ".join(str(d) for d in range(net, 0, -1) if net % d == 0)
        raise Error("%s: --stride %d does not divide the network's stride %d (shifted passes need one of %s)"
                    % (name, s, net, ok))
    return crop_h, crop_w, net, s, net // s


def _dense_scale(sess, x, crop_h, crop_w, s, k, classes):
    """The k*k shifted passes over x, interleaved (tools/cmd_dense.cpp, docs/DENSE.md): pass
    (a, b) runs on x[:, :, a*s:, b*s:] and its cell (i, j) becomes cell (i*k + a, j*k + b)."""
    name = _model_name(sess._model)
    in_name = sess._inputs[0].name
    out_name = sess._outputs[0].name
    n, _, h, w = x.shape
    passes = {}
    for a in range(k):
        for b in range(k):
            oy, ox = a * s, b * s
            if h - oy < crop_h or w - ox < crop_w:
                continue  # no whole crop: the pass adds no cell (and ends the grid there)
            xs = x if oy == 0 and ox == 0 else _np.ascontiguousarray(x[:, :, oy:, ox:])
            (y,) = sess.run([out_name], {in_name: xs})
            if y.ndim != 4 or y.shape[0] != n:
                raise Error("%s: the converted model's output has shape %s; dense scoring needs an [N, K, H, W] score "
                            "map (load the model with fc_to_conv=True)" % (name, _shape_string(y.shape)))
            if classes[0] >= 0 and y.shape[1] != classes[0]:
                raise Error(name + ": score maps of different class counts")
            classes[0] = y.shape[1]
            passes[(a, b)] = y
    rows = min((passes[(a, 0)].shape[2] if (a, 0) in passes else 0) * k + a for a in range(k))
    cols = min((passes[(0, b)].shape[3] if (0, b) in passes else 0) * k + b for b in range(k))
    if rows <= 0 or cols <= 0 or classes[0] <= 0:
        raise Error("%s: the score map is empty at input size %dx%d" % (name, h, w))
    if k == 1:
        return passes[(0, 0)]
    out = _np.zeros((n, classes[0], rows, cols), dtype=_np.float32)
    for (a, b), y in passes.items():
        ra, cb = len(range(a, rows, k)), len(range(b, cols, k))
        out[:, :, a::k, b::k] = y[:, :, :ra, :cb]
    return out


def dense(model, image, size=None, scales=None, stride=None, threads=None):
    """Dense scoring: the score of every crop position of an image in one pass per scale, as
    ``convoy dense MODEL IMAGE [--size HxW | --scales a,b] [--stride S] --output`` computes it
    (same preprocessing: the model's normalisation, the whole image stretched to each scale,
    never centre-cropped), bit for bit. Returns a DenseResult.

    model    a path (loaded with fc_to_conv=True for this call), or an
             ``InferenceSession(path, fc_to_conv=True)`` to reuse across calls
    image    an image file, or a float32 array [N, C, H, W] already preprocessed (``--input``)
    size     (H, W) or "HxW": stretch the image to this size (default: its own size)
    scales   factors, one pass per scale (e.g. [1, 1.5, 2]); not with size
    stride   None/"auto" (the network's) or a divisor of it, by shifted passes
    threads  threads per run when ``model`` is a path (default: all hardware threads)
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise Error("dense: threads must be a non-negative int or None, got %r" % (threads,))
    sess = _dense_session(model, threads)
    m = sess._model
    name = _model_name(m)
    crop_h, crop_w, net, s, k = _dense_geometry(m, stride)
    if isinstance(size, str):
        parts = size.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise Error("dense: size '%s' is not HxW (e.g. 384x384)" % size)
        size = (int(parts[0]), int(parts[1]))
    elif size is not None:
        size = tuple(int(v) for v in size)
        if len(size) != 2 or min(size) <= 0:
            raise Error("dense: size must be (height, width), two positive ints, got %r" % (size,))
    if scales is not None:
        # As the CLI's --scales: parsed as float32, used as double.
        scales = [float(_np.float32(v)) for v in ([scales] if isinstance(scales, (int, float)) else scales)]
        for v in scales:
            if not (v > 0) or v > 64:
                raise Error("dense: scale %g is not in (0, 64]" % v)
        if not scales:
            scales = None
    if size is not None and scales is not None:
        raise Error("dense: give size or scales, not both")

    if isinstance(image, _np.ndarray):
        if size is not None or scales is not None:
            raise Error("dense: size and scales resize images; not with an array input")
        inp = m.inputs[0]
        if image.dtype != _np.float32:
            raise Error("%s: input '%s' expects float32, got a %s array" % (name, inp.name, image.dtype))
        if image.ndim != 4 or (inp.shape[1] >= 0 and image.shape[1] != inp.shape[1]) or image.shape[0] < 1:
            raise Error("%s: input '%s' expects an [N, %s, H, W] tensor, got %s"
                        % (name, inp.name, inp.shape[1] if inp.shape[1] >= 0 else "C", _shape_string(image.shape)))
        image_size = None
        sizes = [tuple(image.shape[2:])]
        factors = [(1.0, 1.0)]
        where = ["the input"]
    else:
        path = _os.fsdecode(image)
        img_h, img_w = _core.image_size(path)
        image_size = (img_h, img_w)
        if size is not None:
            sizes, where = [size], [path + " resized"]
        elif scales is None:
            sizes, where = [image_size], [path]
        else:
            sizes = [(max(1, _llround(v * img_h)), max(1, _llround(v * img_w))) for v in scales]
            where = ["%s at scale %g" % (path, v) for v in scales]
        factors = [(h / img_h, w / img_w) for h, w in sizes]
    for (h, w), at in zip(sizes, where):
        if h < crop_h or w < crop_w:
            raise Error("%s: %s is %dx%d, smaller than the %dx%d crop the model was trained on; dense scoring needs at "
                        "least one whole crop (use --size or --scales)" % (name, at, h, w, crop_h, crop_w))

    classes = [-1]
    maps, geometry = [], []
    for (h, w), (sy, sx) in zip(sizes, factors):
        x = image if image_size is None else _core.dense_input(m, path, h, w)
        y = _dense_scale(sess, x, crop_h, crop_w, s, k, classes)
        rows, cols = y.shape[2], y.shape[3]
        maps.append(y)
        geometry.append({
            "scale": (sy, sx), "input_size": (h, w), "map_size": (rows, cols),
            "row_origins": [i * s for i in range(rows)], "col_origins": [j * s for j in range(cols)],
            "image_row_origins": [i * s / sy for i in range(rows)],
            "image_col_origins": [j * s / sx for j in range(cols)],
            "image_crop_size": (crop_h / sy, crop_w / sx),
        })
    return DenseResult(maps=maps, scales=geometry, crop_size=(crop_h, crop_w), network_stride=net, stride=s,
                       passes=k * k, image_size=image_size, labels=_labels(m))
