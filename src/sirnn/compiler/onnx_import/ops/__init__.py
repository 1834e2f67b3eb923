"""The op handlers, one module per family; importing this package fills the registry
(:data:`~..registry.OPS`)."""

from . import elementwise, fused, linalg, recurrent, reduce, shape  # noqa: F401 - registration
