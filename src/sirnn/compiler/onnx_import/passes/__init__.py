"""The graph passes of the ONNX importer, run in order by
:func:`sirnn.compiler.onnx_import.load_onnx` between reading the graph and emitting the IR:

* ``fold_constants`` (:mod:`.fold`): constants and shape arithmetic evaluated away;
* ``fuse_cells`` (:mod:`.cells`): unrolled FastGRNN chains (:mod:`.fastgrnn`) and RNNPool regions
  (:mod:`.rnnpool`) → one fused node each;
* ``fuse_elman`` (:mod:`.elman`): an unrolled Elman RNN (dynamo's ``nn.RNN``) → one ``rnn``;
* ``fuse_layernorm`` (:mod:`.layernorm`): a decomposed LayerNorm → one ``LayerNormalization``;
* ``fuse_softplus_threshold`` (:mod:`.softplus`): PyTorch's thresholded Softplus → ``Softplus``.

A pass takes and returns the :class:`~..graph.Graph`; passes named ``fuse_*`` are skipped with
``load_onnx(..., fuse_cells=False)``."""

from .cells import fuse_cells
from .elman import fuse_elman
from .fold import fold_constants
from .layernorm import fuse_layernorm
from .softplus import fuse_softplus_threshold

#: (name, pass) in the order they run
PASSES = [("fold_constants", fold_constants), ("fuse_cells", fuse_cells), ("fuse_elman", fuse_elman),
          ("fuse_layernorm", fuse_layernorm),
          ("fuse_softplus_threshold", fuse_softplus_threshold)]
