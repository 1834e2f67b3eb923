"""Math functions on secret-shared fixed-point values, written once against a Backend.

``fn(backend, x, bits_out, scale_out)`` computes the secure protocol with a
:class:`~sirnn.protocols.backend.SecureBackend` and its exact cleartext functionality with a
:class:`~sirnn.protocols.backend.ClearBackend`.
"""

from .exp import exp_saturating, nexp
from .logistic import sigmoid, tanh
from .division import div, reciprocal
from .rsqrt import rsqrt, sqrt

__all__ = ["nexp", "exp_saturating", "sigmoid", "tanh", "rsqrt", "sqrt", "reciprocal", "div"]
