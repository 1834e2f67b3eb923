"""Exceptions raised by sirnn. Every message names what went wrong."""


class SirnnError(Exception):
    """Base class of every sirnn error."""


class ParameterError(SirnnError, ValueError):
    """An argument is invalid: wrong shape, bitwidth, scale, or an out-of-range value."""


class TransportError(SirnnError, ConnectionError):
    """The channel to the peer failed."""


class PeerGoneError(TransportError):
    """The peer closed the connection (or its process died)."""


class ServerBusyError(TransportError):
    """The server's queue is full (or it is shutting down): nothing was computed, try later."""


class PeerTimeoutError(TransportError, TimeoutError):
    """The peer sent nothing within the channel's timeout."""


class ProtocolError(SirnnError):
    """The peer sent something the protocol did not expect (desynchronised parties)."""


class HandshakeError(ProtocolError):
    """The two parties disagree on version, roles or public parameters."""


class ProgramError(ParameterError):
    """A fixed-point program (or a float model description) is malformed: unknown op, missing
    tensor or parameter, shape or format mismatch, unsupported file format version."""


class InputError(ParameterError):
    """The client's input does not fit the model: wrong shape, NaN/infinity, or values outside
    the range of the model's public input format. Raised before any secret is used."""
