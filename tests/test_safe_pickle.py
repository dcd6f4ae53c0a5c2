"""The annotation pickle reader, attacked: every way we know for a pickle to run code, allocate without
bound, recurse or smuggle an object in, written as the bytes an attacker would write."""

from __future__ import annotations

import copyreg
import pickle
import resource
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skeletonmae.data.annotations import safe_load
from skeletonmae.data.safe_pickle import ALLOWED_GLOBALS, UnsafePickleError, check_structure, load_pickle
from skeletonmae.errors import DataError


def s(text: str) -> bytes:
    """SHORT_BINUNICODE"""
    raw = text.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw


def g(module: str, name: str) -> bytes:
    """STACK_GLOBAL (protocol 4)"""
    return s(module) + s(name) + pickle.STACK_GLOBAL


def p4(body: bytes) -> bytes:
    return pickle.PROTO + b"\x04" + body + pickle.STOP


def shell(marker) -> str:
    return f"__import__('os').system('touch {marker}')"


@pytest.fixture
def write(tmp_path):
    def _write(data: bytes, name: str = "x.pkl"):
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write


def refused(path, marker=None, match: str = "") -> str:
    with pytest.raises(DataError) as e:
        safe_load(path)
    if marker is not None:
        assert not marker.exists(), "the pickle ran code"
    assert match in str(e.value)
    return str(e.value)


# -- code execution ----------------------------------------------------------------------------------------------
def test_the_reported_exploit_runs_nothing(write, tmp_path):
    """numpy.dtypes + a dotted name reached dict.get of builtins, then eval (the issue's 150-byte file)."""
    marker = tmp_path / "pwned"
    body = g("numpy.dtypes", "__builtins__.get") + s("eval") + pickle.TUPLE1 + pickle.REDUCE
    body += s(shell(marker)) + pickle.TUPLE1 + pickle.REDUCE
    assert len(p4(body)) < 200
    refused(write(p4(body)), marker, "refusing to load 'numpy.dtypes.__builtins__.get'")


def test_the_exploit_hidden_in_real_data_runs_nothing(write, tmp_path):
    """The payload that also returned real annotations (so training went on with exit 0)."""
    marker = tmp_path / "pwned"
    real = pickle.dumps({"split": {"train": ["a"]}, "annotations": []}, protocol=4)[2:-1]  # the dict, no PROTO/STOP
    body = real + s("x") + g("numpy.dtypes", "__builtins__.get") + s("eval") + pickle.TUPLE1 + pickle.REDUCE
    body += s(shell(marker)) + pickle.TUPLE1 + pickle.REDUCE + pickle.SETITEM
    refused(write(p4(body)), marker, "refusing to load")


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("os", "system"), ("subprocess", "Popen"), ("posix", "system"), ("nt", "system"),
    ("functools", "partial"), ("operator", "attrgetter"), ("operator", "methodcaller"),
    ("copyreg", "_reconstructor"), ("copyreg", "__newobj__"), ("pickle", "loads"), ("io", "open"),
    ("numpy", "load"), ("numpy", "frombuffer"), ("numpy", "ndarray.__reduce__"), ("numpy", "dtype.__call__"),
    ("numpy.dtypes", "Float32DType"), ("numpy.dtypes", "__builtins__.get"), ("numpy.dtypesX", "Float32DType"),
    ("numpy._core.multiarray", "_reconstruct.__self__"), ("numpy.core.multiarray", "__builtins__"),
    ("numpy.core", "multiarray._reconstruct"), ("numpy._core.numeric", "_frombuffer.__globals__"),
    ("numpy.lib.format", "read_array"), ("numpy.testing._private.utils", "runstring"),
    ("torch", "load"), ("collections", "OrderedDict.fromkeys"), ("collections", "defaultdict"),
    ("_codecs", "decode"), ("builtins", "slice"),
])
def test_globals_outside_the_exact_pairs_are_refused(write, tmp_path, module, name):
    marker = tmp_path / "pwned"
    for data in (p4(g(module, name) + s(shell(marker)) + pickle.TUPLE1 + pickle.REDUCE),  # STACK_GLOBAL
                 b"c" + f"{module}\n{name}\n".encode() + b"(V" + shell(marker).encode() + b"\ntR."):  # GLOBAL
        refused(write(data), marker, f"refusing to load '{module}.{name}'")


@pytest.mark.parametrize("body, opcode", [
    (b"(Vtrue\nios\nsystem\n.", "INST"),
    (b"(" + g("os", "system") + s("true") + b"o", "STACK_GLOBAL"),  # OBJ
    (g("os", "system") + pickle.EMPTY_TUPLE + pickle.NEWOBJ, "STACK_GLOBAL"),
])
def test_object_building_opcodes_with_foreign_classes_are_refused(write, body, opcode):
    data = body if body.endswith(b".") else p4(body)
    refused(write(data), match="refusing")


@pytest.mark.parametrize("body, opcode", [
    (pickle.MARK + g("numpy", "dtype") + s("f4") + pickle.OBJ, "OBJ"),
    (g("numpy", "dtype") + s("f4") + pickle.TUPLE1 + pickle.NEWOBJ, "NEWOBJ"),
    (g("numpy", "dtype") + s("f4") + pickle.TUPLE1 + pickle.EMPTY_DICT + pickle.NEWOBJ_EX, "NEWOBJ_EX"),
    (pickle.EXT1 + b"\xf0", "EXT1"), (pickle.EXT2 + b"\xf0\x00", "EXT2"), (pickle.EXT4 + b"\xf0\x00\x00\x00", "EXT4"),
    (pickle.PERSID + b"x\n", "PERSID"), (s("x") + pickle.BINPERSID, "BINPERSID"),
    (pickle.NEXT_BUFFER, "NEXT_BUFFER"), (pickle.EMPTY_LIST + pickle.READONLY_BUFFER, "READONLY_BUFFER"),
])
def test_opcodes_that_build_objects_are_refused_even_with_allowed_globals(write, body, opcode):
    refused(write(p4(body)), match=f"refusing opcode {opcode}")


def test_inst_is_refused_even_for_an_allowed_name(write):
    refused(write(b"(Vf4\ninumpy\ndtype\n."), match="refusing opcode INST")


def test_extension_registry_cannot_reach_a_function(write, tmp_path):
    """copyreg's extension codes map to (module, name) pairs; a registered os.system must stay unreachable."""
    copyreg.add_extension("os", "system", 0xF0)
    try:
        marker = tmp_path / "pwned"
        refused(write(p4(pickle.EXT1 + b"\xf0" + s(shell(marker)) + pickle.TUPLE1 + pickle.REDUCE)), marker,
                "refusing opcode EXT1")
    finally:
        copyreg.remove_extension("os", "system", 0xF0)


def test_build_cannot_set_attributes(write):
    """BUILD on anything but an array shell or a dtype would set attributes (or call __setstate__)."""
    refused(write(p4(pickle.EMPTY_DICT + pickle.EMPTY_DICT + pickle.BUILD)), match="BUILD on dict")
    refused(write(p4(g("numpy", "ndarray") + pickle.EMPTY_DICT + pickle.BUILD)), match="BUILD on _Global")


def test_allowed_names_cannot_be_called_other_ways(write):
    refused(write(p4(g("numpy", "ndarray") + s("x") + pickle.TUPLE1 + pickle.REDUCE)),
            match="only appear as an argument")
    refused(write(p4(g("numpy", "ndarray"))), match="only plain data and arrays")  # a class as a value
    refused(write(p4(s("abc") + pickle.EMPTY_TUPLE + pickle.REDUCE)), match="REDUCE calls str")
    refused(write(p4(g("_codecs", "encode") + s("x") + s("utf-7") + pickle.TUPLE2 + pickle.REDUCE)),
            match="_codecs.encode")


# -- memory --------------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_declared_13_gb_bytes_object_allocates_nothing(write):
    """333 bytes that declare 13.6 GB: read as truncated without asking the allocator for them."""
    before = _rss_mb()
    data = p4(pickle.BINBYTES8 + struct.pack("<Q", 13_600_000_000) + b"\0" * 300)
    refused(write(data), match="truncated or corrupt")
    data = p4(pickle.BYTEARRAY8 + struct.pack("<Q", 2**63 - 1) + b"\0" * 8)
    refused(write(data), match="truncated or corrupt")
    assert _rss_mb() - before < 200


@pytest.mark.parametrize("shape", [(10**5, 10**5), (2**40,), (0,)])
def test_array_shapes_must_match_the_bytes_in_the_file(write, shape):
    """_reconstruct with a huge shape (allocation by numpy) and a BUILD whose shape exceeds its bytes."""
    dtype = g("numpy", "dtype") + s("f4") + pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE3 + pickle.REDUCE
    dims = b"".join(pickle.BININT + struct.pack("<i", min(n, 2**31 - 1)) for n in shape)
    shape_ops = pickle.MARK + dims + pickle.TUPLE
    before = _rss_mb()
    big_shell = g("numpy._core.multiarray", "_reconstruct") + g("numpy", "ndarray") + shape_ops + \
        pickle.SHORT_BINBYTES + b"\x01b" + pickle.TUPLE3 + pickle.REDUCE
    if shape != (0,):  # (0,) is how numpy writes it
        refused(write(p4(big_shell)), match="_reconstruct is allowed only")
    state = pickle.MARK + pickle.BININT1 + b"\x01" + shape_ops + dtype + pickle.NEWFALSE + \
        pickle.SHORT_BINBYTES + b"\x08" + b"\0" * 8 + pickle.TUPLE
    shell_ops = g("numpy._core.multiarray", "_reconstruct") + g("numpy", "ndarray") + pickle.BININT1 + b"\0" + \
        pickle.TUPLE1 + pickle.SHORT_BINBYTES + b"\x01b" + pickle.TUPLE3 + pickle.REDUCE
    refused(write(p4(shell_ops + state + pickle.BUILD)), match="holds 8 bytes")
    assert _rss_mb() - before < 200


@pytest.mark.parametrize("dtype", ["O", "V8", "U4", "S4", "(100000,100000)f4", "M8", "f4,f4", "c8"])
def test_only_number_dtypes(write, dtype):
    ops = g("numpy", "dtype") + s(dtype) + pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE3 + pickle.REDUCE
    refused(write(p4(ops)), match="is not allowed")


def test_dtype_state_cannot_add_fields_or_subarrays(write):
    ops = g("numpy", "dtype") + s("f8") + pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE3 + pickle.REDUCE
    state = pickle.MARK + pickle.BININT1 + b"\x03" + s("|") + \
        g("numpy", "dtype") + s("f4") + pickle.TUPLE1 + pickle.REDUCE + \
        pickle.MARK + pickle.BININT + struct.pack("<i", 10**6) + pickle.TUPLE + pickle.TUPLE2 + \
        pickle.NONE + pickle.NONE + pickle.BININT1 + b"\x08" + pickle.BININT1 + b"\x01" + pickle.BININT1 + b"\0" + \
        pickle.TUPLE
    refused(write(p4(ops + state + pickle.BUILD)), match="byte order only")


# -- recursion and structure ------------------------------------------------------------------------------
def test_a_recursion_bomb_is_refused_without_recursing(write):
    depth = 200_000
    data = p4(pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1))
    refused(write(data), match="nested deeper")


def test_a_list_that_contains_itself_is_refused(write):
    data = p4(pickle.EMPTY_LIST + pickle.MEMOIZE + pickle.BINGET + b"\0" + pickle.APPEND)
    refused(write(data), match="contains itself")


def test_unbalanced_streams_are_refused(write):
    refused(write(p4(pickle.APPEND)), match="empty")
    refused(write(p4(b"")), match="exactly one value")
    refused(write(p4(pickle.NONE + pickle.NONE)), match="exactly one value")
    refused(write(pickle.PROTO + b"\x04" + pickle.NONE), match="truncated")
    refused(write(p4(pickle.BINGET + b"\x07")), match="no memo entry")
    refused(write(p4(pickle.EMPTY_DICT + pickle.EMPTY_LIST + pickle.TUPLE1 + pickle.NONE + pickle.SETITEM)),
            match="plain value")
    refused(write(b""), match="truncated or corrupt")
    refused(write(b"\xff\xfe garbage"), match="truncated or corrupt")


def test_a_huge_decimal_integer_is_an_error_not_a_hang(write):
    refused(write(b"L" + b"9" * 100_000 + b"L\n."), match="truncated or corrupt")


# -- what must load ----------------------------------------------------------------------------------------
def _annotations() -> dict:
    rng = np.random.default_rng(0)
    return {"split": {"train": ["a", "b"]}, "annotations": [
        {"frame_dir": name, "label": np.int64(i), "total_frames": 3, "img_shape": (4, 5),
         "keypoint": rng.random((1, 3, 17, 2), dtype=np.float32),
         "keypoint_score": np.asfortranarray(rng.random((1, 3, 17)).astype(np.float64)),
         "flags": rng.random(4) > 0.5, "ids": np.arange(3, dtype=">i2"), "half": np.ones(2, np.float16)}
        for i, name in enumerate(["a", "b"])]}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol_of_real_data_loads_exactly(write, protocol):
    data = _annotations()
    loaded = load_pickle(write(pickle.dumps(data, protocol=protocol)))
    assert _same(data, loaded)
    assert not loaded["annotations"][0]["keypoint"].flags.writeable  # shared with the file's bytes


def test_numpy_1_module_names_load(write):
    """Files written by numpy 1.x name numpy.core.*, not numpy._core.*."""
    data = _annotations()
    raw = pickle.dumps(data, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    assert _same(data, load_pickle(write(raw)))


def test_ordered_dicts_load_as_dicts(write):
    from collections import OrderedDict

    assert load_pickle(write(pickle.dumps(OrderedDict(a=1, b=[2]), protocol=4))) == {"a": 1, "b": [2]}


# -- random streams of the allowed vocabulary --------------------------------------------------------------
_TOKENS = [
    pickle.MARK, pickle.EMPTY_LIST, pickle.EMPTY_DICT, pickle.EMPTY_TUPLE, pickle.NONE, pickle.NEWTRUE,
    pickle.NEWFALSE, pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.LIST, pickle.DICT,
    pickle.APPEND, pickle.APPENDS, pickle.SETITEM, pickle.SETITEMS, pickle.MEMOIZE, pickle.POP, pickle.POP_MARK,
    pickle.DUP, pickle.REDUCE, pickle.BUILD, pickle.STACK_GLOBAL, pickle.BINFLOAT + struct.pack(">d", 1.5),
    pickle.BININT1 + b"\x00", pickle.BININT1 + b"\x03", pickle.BININT + struct.pack("<i", -7),
    pickle.BINGET + b"\x00", pickle.BINGET + b"\x01", pickle.SHORT_BINBYTES + b"\x01b",
    pickle.SHORT_BINBYTES + b"\x04\0\0\x80?", pickle.SHORT_BINBYTES + b"\x08" + b"\0" * 8,
    s("f4"), s("f8"), s("i8"), s("b1"), s("O"), s("<"), s("|"), s("C"), s("latin1"), s("keypoint"),
    *[g(m, n) for m, n in ALLOWED_GLOBALS], *[s(m) + s(n) for m, n in ALLOWED_GLOBALS],
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_TOKENS), max_size=40), st.integers(2, 5))
def test_random_streams_give_checked_data_or_our_error(write, tokens, protocol):
    path = write(pickle.PROTO + bytes([protocol]) + b"".join(tokens) + pickle.STOP)
    try:
        obj = safe_load(path)
    except DataError:
        return
    check_structure(obj)  # whatever loads is plain data and number arrays
    arrays = [obj] if isinstance(obj, np.ndarray) else []
    for a in arrays:
        assert a.dtype.kind in "biuf"


def test_unsafe_pickle_error_is_a_value_error():
    assert issubclass(UnsafePickleError, ValueError)
