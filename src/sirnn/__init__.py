"""sirnn: secure two-party inference of recurrent neural networks.

Layers (each imports only from the layers above it in this list):

``transport``  channels between the two parties (TCP, in-process), byte/round counters
``ot``         PRG, correlation-robust hash, base OT, IKNP and KK13 OT extension
``protocols``  two-party building blocks over mixed-bitwidth shares
``mathfn``     exp, sigmoid, tanh, reciprocal, division, sqrt, rsqrt
``nn``         neural layers over shares
``compiler``   model compiler and runtime
``cli``        the ``sirnn`` command
"""

__version__ = "0.1.0"

#: Wire protocol version, checked at every handshake.
#: 4: the OT engine choice rides in the set-up hello, which also carries every input's shape
#: (programs with several inputs/outputs); Ferret sessions use per-engine protocol parameters;
#: operations above the working-memory budget run in chunks
#: (``sirnn.protocols.backend.CHUNK_BYTES``).
PROTOCOL_VERSION = 4

ALICE = 0  #: the server: holds the model
BOB = 1  #: the client: holds the input

#: The Python API (mirrors the command line), loaded on first use:
#: ``load_float_model(path)`` (ONNX, .npz, .json), ``compile_model(float_model, calib) -> Program``, ``Program.save/load``, ``load_program``,
#: ``serve(program, host, port, ...)``, ``infer(host, port, x) -> InferenceResult``,
#: ``evaluate_clear(program, x)``, ``FloatModel``/``FloatOp`` (the float model description),
#: ``CompileConfig``.
_API = {"load_float_model", "compile_model", "Program", "load_program", "serve", "infer", "evaluate_clear", "FloatModel",
        "FloatOp", "CompileConfig", "compare"}


def __getattr__(name):
    if name in _API:
        from . import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'sirnn' has no attribute {name!r}")
