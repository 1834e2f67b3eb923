"""Neural layers and recurrent cells over secret shares, written once against a Backend.

* :mod:`sirnn.nn.fixed` — formats (:class:`Fmt`), server-held parameters (:class:`Param`),
  requantisation rules (:func:`requant`).
* :mod:`sirnn.nn.layers` — linear, conv2d (groups, dilation), relu, max/avg pooling, argmax,
  elementwise add/mul, matmul of two shared tensors, multiplication by public constants.
* :mod:`sirnn.nn.norm` — softmax and L2 normalisation over the last axis; reductions (sum,
  mean, max, l2) and normalisation (LayerNorm-style) over the last axis.
* :mod:`sirnn.nn.pointwise` — abs, clip, leaky ReLU, PReLU, hard sigmoid/swish, softplus
  (approximate), exp, sqrt, rsqrt, reciprocal, division.
* :mod:`sirnn.nn.movement` — the local data-movement kernel (gather by an index map; padding,
  sliding windows).
* :mod:`sirnn.nn.rnn` — FastGRNN, LSTM and GRU cells, :func:`rnn_over_time`, float references.
* :mod:`sirnn.nn.meter` — per-section time / bytes / rounds.
"""

from .fixed import Fmt, Param, fit_scale, requant
from .layers import add, argmax, conv2d, linear, maxpool2d, mul, mul_known, relu
from .meter import Meter
from .norm import l2_normalise, softmax
from .rnn import CellFormats, FastGRNNCell, GRUCell, LSTMCell, rnn_over_time

__all__ = ["Fmt", "Param", "fit_scale", "requant", "add", "argmax", "conv2d", "linear", "maxpool2d",
           "mul", "mul_known", "relu", "Meter", "CellFormats", "FastGRNNCell", "GRUCell", "LSTMCell",
           "rnn_over_time", "softmax", "l2_normalise"]
