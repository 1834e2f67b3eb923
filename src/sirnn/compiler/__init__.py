"""Model compiler and runtime.

float model (:mod:`~sirnn.compiler.floatir`) + calibration inputs
→ :func:`~sirnn.compiler.calibrate.compile_model` → fixed-point :class:`~sirnn.compiler.program.Program`
(one ``.sirnn`` file) → :func:`~sirnn.compiler.runtime.execute` against a Backend: the cleartext
interpreter (:func:`~sirnn.compiler.runtime.evaluate_clear`) or the two-party executor
(:func:`~sirnn.compiler.session.serve` / :func:`~sirnn.compiler.session.infer`).
"""

from .calibrate import CompileConfig, compare, compile_model
from .floatir import FloatModel, FloatOp, load_float_model, register_loader
from .ops import Op, TensorSpec
from .program import Program, load_program
from .runtime import ProgressEvent, evaluate_clear, execute
from .session import InferenceResult, client_session, format_report, infer, serve, server_session

__all__ = ["CompileConfig", "compare", "compile_model", "FloatModel", "FloatOp", "load_float_model",
           "register_loader", "Op", "TensorSpec", "Program", "load_program", "ProgressEvent",
           "evaluate_clear", "execute", "InferenceResult", "client_session", "format_report", "infer",
           "serve", "server_session"]
