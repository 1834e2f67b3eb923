"""The network edge: what a peer (or a file) can make a party allocate, parse, log or crash on.

Frame lengths are checked against what the protocol expects before anything is allocated; peer
JSON has size and depth caps; model files are read under caps and a damaged one is a one-line
error; the client's abort says nothing about its input; peer text is escaped in messages and
logs; encoders range-check before casting; TLS on one side only gets a hint on both sides.
"""

import contextlib
import inspect
import io
import json
import os
import re
import socket
import struct
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelhelp import tiny_compiled
from sirnn import ALICE, BOB, PROTOCOL_VERSION
from sirnn.compiler import Program, infer, serve
from sirnn.compiler.session import _hello, client_session, server_session
from sirnn.data import model_path
from sirnn.errors import (HandshakeError, InputError, ParameterError, ProgramError, ProtocolError,
                          SirnnError, TransportError)
from sirnn.nn.fixed import Fmt
from sirnn.protocols.ring import encode, from_int
from sirnn.transport import (connect, handshake, inproc_pair, listen, make_self_signed_cert, run_inproc,
                             tls_client_context, tls_server_context)
from sirnn.transport.channel import HEADER
from servehelp import proc_kb
from sirnn.transport.peerdata import MAX_JSON_DEPTH, json_depth, loads_json, peer_text


def _vm_rss() -> int:
    """This process's resident memory (bytes)."""
    return proc_kb(os.getpid()) * 1024


@contextlib.contextmanager
def _traced_peak_below(limit: int):
    """Assert that the Python allocations inside the block peak below ``limit`` bytes."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"allocations peaked at {peak:,} bytes"


def _pair(**listener_kwargs):
    """(server channel, client channel) over loopback TCP."""
    with listen("127.0.0.1", 0, **listener_kwargs) as listener:
        got = {}
        t = threading.Thread(target=lambda: got.update(ch=listener.accept(timeout=10)))
        t.start()
        client = connect("127.0.0.1", listener.port, connect_timeout=10)
        t.join(10)
    return got["ch"], client


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_compiled(tmp_path_factory.mktemp("edge"))


# ---- frames: the announced length is checked before anything is allocated -----------------------
@pytest.mark.parametrize("recv", [
    lambda ch: ch.recv_bytes(what="status reply", max_nbytes=1 << 16),  # a bound
    lambda ch: ch.recv_bytes(64, what="status reply"),  # an exact size
])
def test_a_huge_announced_frame_is_refused_without_allocating(recv):
    server, client = _pair(timeout=5)
    client._write_now([memoryview(HEADER.pack(1, 1 << 30))])  # announces 1 GiB, sends nothing more
    before = _vm_rss()
    t0 = time.monotonic()
    with pytest.raises(ProtocolError, match=r"status reply of (64 bytes, the peer .* announced 1073741824|"
                                            r"1073741824 bytes, more than the 65536 allowed)"):
        recv(server)
    assert time.monotonic() - t0 < 2  # refused at once, not after waiting for the payload
    assert _vm_rss() - before < 32 << 20  # (1 GiB if it had been allocated)
    with pytest.raises(ProtocolError, match="out of step"):  # the stream cannot be trusted any more
        server.recv_bytes(what="x", max_nbytes=10)
    server.close()
    client.close()


def test_a_frame_within_its_bound_arrives():
    server, client = _pair(timeout=5)
    client.send_bytes(b"x" * 100_000)
    assert server.recv_bytes(what="blob", max_nbytes=100_000) == b"x" * 100_000
    client.send_bytes(b"y" * 10)
    assert server.recv_bytes(10) == b"y" * 10
    server.close()
    client.close()


def test_inproc_channel_enforces_the_same_bound():
    a, b = inproc_pair(timeout=5)
    a.send_bytes(b"z" * 101)
    with pytest.raises(ProtocolError, match="a reply of 101 bytes, more than the 100 allowed"):
        b.recv_bytes(what="reply", max_nbytes=100)


def test_a_server_refuses_a_huge_control_message_without_allocating(model):
    """A client that announces 1 GiB where the server expects its small JSON answer: the session
    fails at once, the server's memory does not grow."""
    prog, _ = model
    server, client = _pair(timeout=10)
    result = {}

    def run_server():
        try:
            server_session(server, prog)
        except SirnnError as e:
            result["error"] = e

    t = threading.Thread(target=run_server)
    before = _vm_rss()
    t.start()
    handshake(client, BOB, _hello())
    client.recv_bytes(what="program", max_nbytes=1 << 26)
    client._write_now([memoryview(HEADER.pack(3, 1 << 30))])
    t.join(10)
    assert not t.is_alive()
    assert isinstance(result["error"], ProtocolError)
    assert "answer to the program of 1073741824 bytes, more than the 65536 allowed" in str(result["error"])
    assert _vm_rss() - before < 64 << 20
    server.close()
    client.close()


# ---- JSON from the peer: size and depth caps, no RecursionError ----------------------------------
def test_deeply_nested_json_is_refused_before_parsing():
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(ProtocolError, match=f"nests 200000 levels deep, more than the {MAX_JSON_DEPTH}"):
        loads_json(deep, "status")
    # brackets inside strings do not count; escaped quotes do not end a string
    text = json.dumps({"a": "[[[[{{{{" * 100, "b": ['\\"[[[', {"c": [1]}]}).encode()
    assert json_depth(text) == 4 and loads_json(text, "x")["b"][1] == {"c": [1]}


def test_a_deeply_nested_hello_is_a_handshake_error_not_an_internal_error():
    a, b = inproc_pair(timeout=5)
    a.send_bytes(b'{"magic": "sirnn", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(HandshakeError, match="peer is not a sirnn party: the hello nests"):
        handshake(b, ALICE)



_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=8)


def _nest(kids):
    return st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3))


_json_values = st.recursive(_scalars, _nest, max_leaves=25)


def _depth(v) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@given(_json_values)
def test_json_depth_is_the_nesting_depth(value):
    assert json_depth(json.dumps(value).encode()) == _depth(value)


# ---- peer text in messages and logs ---------------------------------------------------------------
def test_peer_text_escapes_control_characters_and_caps_the_length():
    forged = "x\n[12:00:00] sirnn serve: session 9: ok\r\x1b[2K"
    assert "\n" not in peer_text(forged) and "\r" not in peer_text(forged) and "\x1b" not in peer_text(forged)
    assert peer_text("scale") == "scale"  # plain names stay readable
    assert len(peer_text("A" * 10_000)) <= 61 and peer_text("A" * 10_000).endswith("…")
    assert peer_text("é\u2028") == repr("é\u2028").encode("ascii", "backslashreplace").decode()


def test_handshake_errors_do_not_carry_raw_peer_text():
    a, b = inproc_pair(timeout=5)
    evil = {"magic": "sirnn", "version": "3\n[00:00:00] sirnn serve: session 1: ok " + "A" * 5000,
            "role": 0, "digest": "d", "keys": {}}
    a.send_bytes(json.dumps(evil).encode())
    with pytest.raises(HandshakeError) as e:
        handshake(b, BOB)
    assert "\n" not in str(e.value) and len(str(e.value)) < 300
    a, b = inproc_pair(timeout=5)
    evil = {"magic": "sirnn", "version": PROTOCOL_VERSION, "role": 0, "digest": "d\n", "keys": {"k\nforged line": "0"}}
    a.send_bytes(json.dumps(evil).encode())
    with pytest.raises(HandshakeError, match=r"only the peer has 'k\\nforged line'") as e:
        handshake(b, BOB, {"p": 1})
    assert "\n" not in str(e.value)


# ---- the client's abort tells the server nothing about the input ---------------------------------
def test_client_abort_sends_no_reason(model):
    prog, _ = model
    seen = []

    def fn(role, chan):
        if role == ALICE:
            inner = chan._recv_frame

            def recording(*args):
                depth, payload = inner(*args)
                seen.append(bytes(payload))
                return depth, payload

            chan._recv_frame = recording
            return server_session(chan, prog)
        with pytest.raises(InputError, match=r"max \|x\| = 607\.449"):
            client_session(chan, np.full((4, 4), 607.449))
        return None

    srv, _ = run_inproc(fn, timeout=30)
    assert srv["status"] == "aborted" and "reason" not in srv
    assert json.loads(seen[-1]) == {"status": "abort"}  # the whole message


def test_server_log_says_only_client_aborted(model):
    prog, _ = model
    lines: list[str] = []
    listening = threading.Event()
    port = {}

    def on_listening(host, p):
        port["p"] = p
        listening.set()

    t = threading.Thread(target=serve, args=(prog,), kwargs=dict(
        max_sessions=1, log=lines.append, on_listening=on_listening, timeout=30), daemon=True)
    t.start()
    assert listening.wait(60)
    with pytest.raises(InputError, match="607.449"):
        infer("127.0.0.1", port["p"], np.full((4, 4), 607.449), connect_timeout=10)
    t.join(30)
    log = "\n".join(lines)
    assert "session 1: client aborted before any secret was used" in log
    session = log[log.index("session 1: client"):]
    for detail in ("607", "max |x|", "out of range", "input", "value(s)"):
        assert detail not in session, log


# ---- no fixed seed in the public session API ------------------------------------------------------
@pytest.mark.parametrize("fn", [server_session, client_session, serve, infer])
def test_public_session_api_takes_no_seed(fn):
    params = inspect.signature(fn).parameters
    assert "seed" not in params
    assert all(name.startswith("_") for name in params if "seed" in name)


# ---- encoders range-check before the cast ---------------------------------------------------------
@pytest.mark.parametrize("x", [1e30, -1e30, 2.0**63, -2.0**63 - 4096])
def test_encoding_a_huge_value_is_an_error_not_a_wrap(x):
    with pytest.raises(ParameterError, match=r"input x out of range for a signed 64-bit ring"):
        encode(np.array([x]), 64, 0, what="input x")
    with pytest.raises(ParameterError, match="out of range for a signed 16-bit ring"):
        Fmt(16, 8).encode([x])


def test_encoding_the_ring_ends_still_works():
    assert to_int(encode(np.array([-2.0**63]), 64, 0)) == -2**63
    assert int(from_int(np.array([2.0**64 - 2048]), 64, signed=False)[0]) == 2**64 - 2048
    with pytest.raises(ParameterError, match="unsigned 64-bit"):
        from_int(np.array([2.0**64]), 64, signed=False)


def to_int(ring):
    return int(np.asarray(ring, np.uint64).view(np.int64)[0])


# ---- model files: caps before unpacking, damaged files are one-line errors ------------------------
def _zip_with(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, chunks in members.items():
            with z.open(name, "w", force_zip64=True) as f:
                for c in chunks:
                    f.write(c)


def test_a_json_zip_bomb_is_refused_under_a_small_memory_growth(tmp_path):
    bomb = tmp_path / "bomb.sirnn"
    _zip_with(bomb, {"program.json": [b'{"format": "sirnn-program"' + b" " * (1 << 20)]
                     + [b" " * (1 << 20)] * 1023 + [b"}"]})  # 1 GiB of JSON
    assert bomb.stat().st_size < 2 << 20
    with _traced_peak_below(16 << 20), pytest.raises(ProgramError, match=r"program.json unpacks to 1,073,741,8\d\d bytes, more than the 67,108,864"):
        Program.load(bomb)


def _lie_about_size(path, name, size):
    """Patch the uncompressed size that the zip headers declare for ``name`` (both copies)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        struct.pack_into("<I", data, z.getinfo(name).header_offset + 22, size)  # local header
    for m in re.finditer(rb"PK\x01\x02", bytes(data)):  # central directory entries
        if data[m.start() + 46:m.start() + 46 + len(name)] == name.encode():
            struct.pack_into("<I", data, m.start() + 24, size)
    path.write_bytes(bytes(data))


def test_a_bomb_that_lies_about_its_size_stops_at_the_declared_size(tmp_path):
    bomb = tmp_path / "liar.sirnn"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:  # (not zip64: sizes fit 32 bits)
        with z.open("program.json", "w") as f:
            for _ in range(512):
                f.write(b" " * (1 << 20))  # 512 MiB
    _lie_about_size(bomb, "program.json", 1000)
    with _traced_peak_below(16 << 20), pytest.raises(ProgramError, match=r"program.json is damaged \(BadZipFile: Bad CRC-32"):
        Program.load(bomb)


def test_parameter_values_are_read_under_their_declared_size(model, tmp_path):
    prog, path = model
    with zipfile.ZipFile(path) as z:
        d = json.loads(z.read("program.json"))
    name = sorted(d["params"])[0]
    bomb = tmp_path / "params-bomb.sirnn"
    inner = io.BytesIO()
    _zip_with(inner, {f"{name}.npy": [b"\x00" * (1 << 20)] * 64})  # 64 MiB for a small parameter
    with zipfile.ZipFile(bomb, "w") as z:
        z.writestr("program.json", json.dumps(d))
        z.writestr("params.npz", inner.getvalue())
    with _traced_peak_below(16 << 20), pytest.raises(ProgramError, match=f"{name}.npy unpacks to 67,108,864 bytes, more than"):
        Program.load(bomb)
    d["params"][name]["shape"] = [1 << 40]
    huge = tmp_path / "huge-shape.sirnn"
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("program.json", json.dumps(d))
        z.writestr("params.npz", b"")
    with pytest.raises(ProgramError, match="more than the 1,073,741,824 allowed"):
        Program.load(huge)


def test_every_bit_flip_gives_the_same_program_or_a_one_line_program_error(model, tmp_path):
    prog, path = model
    good = path.read_bytes()
    rng = np.random.default_rng(7)
    outcomes = {"same": 0, "error": 0}
    for pos in rng.choice(len(good), size=min(len(good), 250), replace=False):
        flipped = bytearray(good)
        flipped[pos] ^= 1 << int(rng.integers(8))
        f = tmp_path / "flip.sirnn"
        f.write_bytes(bytes(flipped))
        try:
            p = Program.load(f)
        except ProgramError as e:
            assert "\n" not in str(e)
            outcomes["error"] += 1
            continue
        # a flip in an unchecked header field (e.g. a time stamp) changes nothing that is read
        assert p.digest() == prog.digest()
        assert all((p.params[k].values == v.values).all() for k, v in prog.params.items())
        outcomes["same"] += 1
    assert outcomes["error"] > 100


# ---- TLS on one side only -----------------------------------------------------------------------
def _mismatch(tmp_path, server_tls: bool):
    cert, key = make_self_signed_cert(tmp_path)
    errors = {}
    with listen("127.0.0.1", 0, tls=tls_server_context(cert, key) if server_tls else None,
                timeout=5) as listener:
        def server():
            try:
                handshake(listener.accept(timeout=10), ALICE)
            except SirnnError as e:
                errors["server"] = e

        t = threading.Thread(target=server)
        t.start()
        try:
            ch = connect("127.0.0.1", listener.port, connect_timeout=5, timeout=5,
                         tls=None if server_tls else tls_client_context(cafile=cert))
            handshake(ch, BOB)
        except SirnnError as e:
            errors["client"] = e
        t.join(10)
    return errors


def test_tls_client_against_a_plain_server_gets_hints_on_both_sides(tmp_path):
    errors = _mismatch(tmp_path, server_tls=False)
    assert isinstance(errors["client"], TransportError)
    assert "the server does not speak TLS" in str(errors["client"])
    assert isinstance(errors["server"], HandshakeError)
    assert "speaks TLS and this server does not: start the server with --tls-cert" in str(errors["server"])


def test_plain_client_against_a_tls_server_gets_a_hint_on_the_server(tmp_path):
    errors = _mismatch(tmp_path, server_tls=True)
    assert "the client does not speak TLS: it must connect with --tls-ca" in str(errors["server"])
    assert isinstance(errors["client"], TransportError)


def test_the_client_says_it_waits_for_the_server_then_gives_up():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here (bound, not listening)
        said = []
        t0 = time.monotonic()
        with pytest.raises(TransportError, match=f"could not connect to 127.0.0.1:{port} within 0.5 s"):
            connect("127.0.0.1", port, connect_timeout=0.5, on_wait=said.append)
        assert time.monotonic() - t0 < 3
    assert len(said) == 1 and said[0].startswith(f"waiting for server at 127.0.0.1:{port}…")


# ---- fuzz: arbitrary bytes from the peer → a clear sirnn error, at once, with little memory -------
_FUZZ_LISTENER = {}


def _fuzz_channel(wire: bytes):
    """A server channel whose peer sent ``wire`` and then closed the connection."""
    if "l" not in _FUZZ_LISTENER:
        _FUZZ_LISTENER["l"] = listen("127.0.0.1", 0, backlog=64, timeout=2)
    listener = _FUZZ_LISTENER["l"]
    raw = socket.create_connection(("127.0.0.1", listener.port))
    ch = listener.accept(timeout=5)
    raw.sendall(wire)
    raw.close()
    return ch


_frames = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda d, n, tail: HEADER.pack(d, n) + tail, st.integers(0, 2**32 - 1),
              st.integers(0, 2**64 - 1), st.binary(max_size=64)),
    st.builds(lambda v: HEADER.pack(1, len(v)) + v, st.binary(max_size=200)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames)
def test_fuzz_frame_parser(wire):
    ch = _fuzz_channel(wire)
    before = _vm_rss()
    t0 = time.monotonic()
    try:
        for _ in range(3):  # up to three frames: each bounded, the stream ends with EOF
            ch.recv_bytes(what="fuzz frame", max_nbytes=1 << 16)
    except (ProtocolError, TransportError):
        pass
    finally:
        ch.close(flush_timeout=0.1)
    assert time.monotonic() - t0 < 2
    assert _vm_rss() - before < 16 << 20


_hellos = st.one_of(
    st.binary(max_size=300),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"magic": st.just("sirnn")}, optional={
        "version": _json_values, "role": _json_values, "digest": _json_values, "keys": _json_values,
    }).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=300, deadline=None)
@given(_hellos)
def test_fuzz_hello_parser(payload):
    a, b = inproc_pair(timeout=2)
    a.send_bytes(payload)
    try:
        handshake(b, BOB, {"p": 1})
    except HandshakeError as e:
        assert "\n" not in str(e) and len(str(e)) < 1000


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hellos)
def test_fuzz_hello_over_tcp(payload):
    ch = _fuzz_channel(HEADER.pack(1, len(payload)) + payload)
    try:
        handshake(ch, ALICE)
    except (HandshakeError, TransportError):
        pass
    finally:
        ch.close(flush_timeout=0.1)


def _paths(v, prefix=()):
    """Every key path into the nested dicts of ``v`` (list items: the first two)."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield prefix + (k,)
            yield from _paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v[:2]):
            yield from _paths(x, prefix + (i,))


_PUBLIC = Program.load(model_path("fastgrnn_japanese_vowels")).describe()
_PUBLIC_PATHS = [p for p in _paths(_PUBLIC) if not isinstance(p[-1], int)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PUBLIC_PATHS), _json_values)
def test_fuzz_public_program_parser(path, value):
    """What a (deviating) server sends as its public program: a valid program with any one field
    replaced by any JSON value is a ProgramError or a valid program, never another exception."""
    d = json.loads(json.dumps(_PUBLIC))
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    try:
        Program.from_public_bytes(json.dumps(d).encode())
    except ProgramError as e:
        assert "\n" not in str(e)
