"""Transport layer: channels between the two parties, with byte and round counters."""

from .channel import Channel, ChannelStats
from .inproc import InProcChannel, ThreadedPair, inproc_pair, run_inproc
from .packing import pack, packed_nbytes, unpack

__all__ = ["Channel", "ChannelStats", "InProcChannel", "ThreadedPair", "inproc_pair", "run_inproc",
           "pack", "unpack", "packed_nbytes"]
