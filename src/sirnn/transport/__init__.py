"""Transport layer: channels between the two parties, with byte and round counters."""

from .channel import Channel, ChannelStats
from .handshake import handshake, params_digest
from .inproc import InProcChannel, ThreadedPair, inproc_pair, run_inproc
from .launch import run_two_processes
from .netem import NetworkProfile, Relay, RelayProcess
from .packing import pack, packed_nbytes, unpack
from .tcp import Listener, TCPChannel, connect, listen, tls_client_context, tls_server_context
from .tlsutil import make_self_signed_cert

__all__ = ["Channel", "ChannelStats", "InProcChannel", "ThreadedPair", "inproc_pair", "run_inproc",
           "pack", "unpack", "packed_nbytes",
           "TCPChannel", "Listener", "connect", "listen", "tls_server_context",
           "tls_client_context", "make_self_signed_cert", "handshake", "params_digest",
           "run_two_processes", "NetworkProfile", "Relay", "RelayProcess"]
