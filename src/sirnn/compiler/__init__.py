"""Model compiler and runtime: the command line's model steps as Python calls.

=========================================================  =============================================
``sirnn compile MODEL.onnx --calib DATA.npy -o M.sirnn``   ``compile_model("MODEL.onnx", "DATA.npy").save("M.sirnn")``
``sirnn inspect M.sirnn``                                  ``print(Program.load("M.sirnn").summary())``
``sirnn eval M.sirnn --input X.npy``                       ``evaluate_clear(Program.load("M.sirnn"), x)``
``sirnn serve M.sirnn --port P``                           ``serve("M.sirnn", port=P)``
``sirnn infer --port P --input X.npy --report``            ``infer("127.0.0.1", P, x, report=True)``
=========================================================  =============================================

The pieces: a float model (:class:`FloatModel` of :class:`FloatOp` s, read by
:func:`load_float_model` from ``.onnx``, ``.npz`` or ``.json``) and calibration inputs →
:func:`compile_model` (:mod:`~sirnn.compiler.calibrate`; :func:`compare` measures the fixed-point
error against float) → a fixed-point :class:`Program` of :class:`Op` s over :class:`TensorSpec` s
(:mod:`~sirnn.compiler.program`, one ``.sirnn`` file that loads with numpy alone) →
:func:`execute` against a Backend: the cleartext interpreter (:func:`evaluate_clear`) or the
two-party executor of a session (:func:`serve` / :func:`infer` over TCP or TLS;
:func:`server_session` / :func:`client_session` over any channel). A client's run yields an
:class:`InferenceResult`; :func:`format_report` prints its per-layer table and
:class:`ProgressEvent` s feed a progress display.
"""

from .calibrate import CompileConfig, compare, compile_model
from .floatir import FloatModel, FloatOp, load_float_model, register_loader
from .ops import Op, TensorSpec
from .program import Program, load_program
from .runtime import ProgressEvent, evaluate_clear, execute
from .server import serve
from .session import InferenceResult, client_session, format_report, infer, server_session

__all__ = ["CompileConfig", "compare", "compile_model", "FloatModel", "FloatOp", "load_float_model",
           "register_loader", "Op", "TensorSpec", "Program", "load_program", "ProgressEvent",
           "evaluate_clear", "execute", "InferenceResult", "client_session", "format_report", "infer",
           "serve", "server_session"]
