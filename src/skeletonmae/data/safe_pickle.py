"""A pickle reader that runs no code: annotation pickles hold data, and only data comes out.

Python's own unpickler calls whatever a file names (``find_class`` + ``REDUCE``), so restricting it means
trusting every callable it is allowed to reach and every attribute path to them. This module does not use
it. It parses the opcode stream with :func:`pickletools.genops` (a parser: it executes nothing) and runs a
small stack machine of its own that knows:

- plain values: None, bools, ints, floats, str, bytes; lists, tuples and dicts; the memo;
- exactly the numpy reconstructions in :data:`ALLOWED_GLOBALS`, each interpreted here from its arguments
  (``np.frombuffer`` over bytes that are in the file), never by calling numpy's pickle hooks.

Everything else (any other global, ``INST`` / ``OBJ`` / ``NEWOBJ``, extension codes, persistent ids,
out-of-band buffers) is refused with a :class:`UnsafePickleError` that names it. Sizes declared in the
stream are bounded by the bytes left in the file before anything is read, an array's shape must match the
bytes that are really there, and the loaded structure is walked (without recursion) for cycles, depth and
foreign objects. Arrays share the file's bytes and are read-only: readers never write into loaded data.
"""

from __future__ import annotations

import math
import mmap
import os
import pickletools

import numpy as np

MAX_DEPTH = 32  # containers inside containers; an annotation file needs 4

# The only globals a pickle may name: exact (module, name) pairs, no prefixes, no dotted names.
ALLOWED_GLOBALS: dict[tuple[str, str], str] = {
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",  # numpy 2 arrays, protocols 2-4: empty shell...
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",  # ...numpy 1; the data come with BUILD
    ("numpy", "ndarray"): "ndarray",  # the class argument of _reconstruct, nothing else
    ("numpy", "dtype"): "dtype",  # a dtype by name; BUILD sets its byte order
    ("numpy._core.multiarray", "scalar"): "scalar",  # numpy 2 scalars (e.g. a label stored as np.int64)
    ("numpy.core.multiarray", "scalar"): "scalar",  # numpy 1 scalars
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",  # numpy 2 arrays, protocol 5
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",  # numpy 1 arrays, protocol 5
    ("_codecs", "encode"): "encode",  # bytes in protocols 0-2: encode(str, 'latin1')
    ("collections", "OrderedDict"): "ordereddict",  # read as a plain dict
}

# dtypes an array or scalar may have: numbers and bools (no objects, strings, records or sub-arrays).
ALLOWED_DTYPES = frozenset("b1 i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8".split())

# Opcodes that only move data; anything not here and not handled below is refused.
_VALUE_OPS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}


class UnsafePickleError(ValueError):
    """The pickle asks for something other than plain data and numpy arrays."""


class _Global:
    """A name from :data:`ALLOWED_GLOBALS` on the stack (not the object it names)."""

    def __init__(self, kind: str):
        self.kind = kind


class _ArrayShell:
    """``_reconstruct(ndarray, (0,), b'b')`` before its BUILD; ``array`` holds the result after it."""

    array: np.ndarray | None = None


class _DTypeShell:
    """``dtype(name, align, copy)`` before its BUILD (which may set the byte order)."""

    def __init__(self, name: str):
        self.dtype = np.dtype(name)


class _Reader:
    """A reader over the file's bytes (memory-mapped) that never returns more than is there, whatever a
    length in the stream declares."""

    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def read(self, n: int) -> bytes:  # lengths come from unsigned fields; slicing stops at the end
        start = self.pos
        self.pos = start + n
        return self.buf[start:self.pos]

    def readline(self) -> bytes:
        start, end = self.pos, self.buf.find(b"\n", self.pos)
        self.pos = len(self.buf) if end < 0 else end + 1
        return self.buf[start:self.pos]


def _dtype(value) -> np.dtype:
    if isinstance(value, _DTypeShell):
        return value.dtype
    raise UnsafePickleError(f"expected a numpy dtype, got {type(value).__name__}")


def _shape(value) -> tuple[int, ...]:
    if not (isinstance(value, tuple) and all(type(s) is int and s >= 0 for s in value)):
        raise UnsafePickleError(f"an array shape must be a tuple of ints >= 0, got {type(value).__name__}")
    return value


def _array(data, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    """The array over ``data`` (bytes from the file); its declared size must be the size of ``data``."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"array data must be bytes, got {type(data).__name__}")
    need = math.prod(shape) * dtype.itemsize
    if need != len(data):
        raise UnsafePickleError(f"an array declares shape {shape} of {dtype} ({need} bytes) but holds "
                                f"{len(data)} bytes")
    array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
    array.flags.writeable = False
    return array


def _call(kind: str, args) -> object:
    """REDUCE of an allowed global, interpreted here."""
    if not isinstance(args, tuple):
        raise UnsafePickleError("REDUCE arguments must be a tuple")
    if kind == "reconstruct":
        if len(args) != 3 or not (isinstance(args[0], _Global) and args[0].kind == "ndarray") or args[1] != (0,):
            raise UnsafePickleError("numpy _reconstruct is allowed only as numpy writes it: (ndarray, (0,), b'b')")
        return _ArrayShell()
    if kind == "dtype":
        if not args or not isinstance(args[0], str) or args[0] not in ALLOWED_DTYPES:
            name = args[0] if args and isinstance(args[0], str) else type(args[0] if args else None).__name__
            raise UnsafePickleError(f"dtype {name[:40]!r} is not allowed; arrays may hold numbers and bools "
                                    f"({', '.join(sorted(ALLOWED_DTYPES))})")
        return _DTypeShell(args[0])
    if kind == "scalar":
        if len(args) != 2:
            raise UnsafePickleError("numpy scalar takes (dtype, bytes)")
        dtype = _dtype(args[0])
        return _array(args[1], dtype, (1,), False)[0]
    if kind == "frombuffer":
        if len(args) != 4 or args[3] not in ("C", "F"):
            raise UnsafePickleError("numpy _frombuffer takes (bytes, dtype, shape, 'C' or 'F')")
        return _array(args[0], _dtype(args[1]), _shape(args[2]), args[3] == "F")
    if kind == "encode":
        if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
            raise UnsafePickleError("_codecs.encode is allowed only as (str, 'latin1'), as protocols 0-2 write bytes")
        return args[0].encode("latin-1")
    if kind == "ordereddict":
        if args:
            raise UnsafePickleError("OrderedDict is allowed only empty, filled by SETITEMS")
        return {}
    raise UnsafePickleError(f"numpy.{kind} may only appear as an argument of _reconstruct")


def _build(obj, state) -> object:
    """BUILD: an array's or a dtype's state, nothing else."""
    if isinstance(obj, _ArrayShell) and obj.array is None:
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[3], bool)):
            raise UnsafePickleError("an array's state must be (version, shape, dtype, fortran, bytes)")
        obj.array = _array(state[4], _dtype(state[2]), _shape(state[1]), state[3])
        return obj.array
    if isinstance(obj, _DTypeShell):
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")
                and state[2] is None and state[3] is None and state[4] is None):
            raise UnsafePickleError("a dtype's state may set its byte order only (no fields or sub-arrays)")
        if state[1] in "<>":
            obj.dtype = obj.dtype.newbyteorder(state[1])
        return obj
    raise UnsafePickleError(f"BUILD on {type(obj).__name__} is not allowed (it would set attributes of an object)")


def _pop_mark(stack: list, marks: list) -> list:
    if not marks:
        raise UnsafePickleError("an opcode needs a MARK that is not there")
    start = marks.pop()
    items = stack[start:]
    del stack[start:]
    return items


def _hashable(key) -> object:
    if not isinstance(key, (str, int, float, bytes, bool, type(None), tuple)) or (
            isinstance(key, tuple) and not all(isinstance(k, (str, int, float, bytes, bool)) for k in key)):
        raise UnsafePickleError(f"a dict key must be a plain value, got {type(key).__name__}")
    return key


def _run(reader) -> object:
    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}

    def pop():
        if len(stack) <= (marks[-1] if marks else 0):
            raise UnsafePickleError("the stack is empty where an opcode needs a value")
        return stack.pop()

    for op, arg, _ in pickletools.genops(reader):
        name = op.name
        if name in _VALUE_OPS:
            stack.append(arg)
        elif name in ("PROTO", "FRAME"):
            continue
        elif name == "STOP":
            if len(stack) != 1 or marks:
                raise UnsafePickleError("the pickle does not end with exactly one value")
            return stack[0]
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [pop() for _ in range(n)][::-1]
            stack.append(tuple(items))
        elif name == "TUPLE":
            stack.append(tuple(_pop_mark(stack, marks)))
        elif name == "LIST":
            stack.append(_pop_mark(stack, marks))
        elif name == "DICT":
            items = _pop_mark(stack, marks)
            stack.append({_hashable(k): v for k, v in zip(items[::2], items[1::2], strict=False)})
        elif name in ("APPEND", "APPENDS"):
            items = [pop()] if name == "APPEND" else _pop_mark(stack, marks)
            target = pop()
            if not isinstance(target, list):
                raise UnsafePickleError(f"{name} on {type(target).__name__}, not a list")
            target.extend(items)
            stack.append(target)
        elif name in ("SETITEM", "SETITEMS"):
            items = [pop(), pop()][::-1] if name == "SETITEM" else _pop_mark(stack, marks)
            target = pop()
            if not isinstance(target, dict) or len(items) % 2:
                raise UnsafePickleError(f"{name} on {type(target).__name__}, not a dict")
            for k, v in zip(items[::2], items[1::2], strict=True):
                target[_hashable(k)] = v
            stack.append(target)
        elif name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
            if not stack:
                raise UnsafePickleError(f"{name} with an empty stack")
            memo[len(memo) if name == "MEMOIZE" else int(arg)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in memo:
                raise UnsafePickleError(f"{name} {arg} names no memo entry")
            value = memo[int(arg)]
            stack.append(value.array if isinstance(value, _ArrayShell) and value.array is not None else value)
        elif name == "POP":
            pop()
        elif name == "POP_MARK":
            _pop_mark(stack, marks)
        elif name == "DUP":
            stack.append(stack[-1] if stack else pop())
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            module, qualname = arg.split(" ", 1) if name == "GLOBAL" else (None, None)
            if name == "STACK_GLOBAL":
                qualname, module = pop(), pop()
            if not (isinstance(module, str) and isinstance(qualname, str)) or (module, qualname) not in ALLOWED_GLOBALS:
                shown = f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else "?"
                raise UnsafePickleError(f"refusing to load '{shown[:120]}': an annotation pickle may only hold "
                                        "numpy arrays, numbers, strings, lists, tuples and dicts")
            stack.append(_Global(ALLOWED_GLOBALS[(module, qualname)]))
        elif name == "REDUCE":
            args, func = pop(), pop()
            if not isinstance(func, _Global):
                raise UnsafePickleError(f"REDUCE calls {type(func).__name__}, not an allowed numpy reconstruction")
            stack.append(_call(func.kind, args))
        elif name == "BUILD":
            state, obj = pop(), pop()
            stack.append(_build(obj, state))
        else:  # INST, OBJ, NEWOBJ(_EX), EXT1/2/4, (BIN)PERSID, NEXT_BUFFER, READONLY_BUFFER, ...
            raise UnsafePickleError(f"refusing opcode {name}: an annotation pickle holds plain data only")
    raise UnsafePickleError("the pickle ends without STOP (truncated)")


def check_structure(obj: object, max_depth: int = MAX_DEPTH) -> None:
    """Refuse cycles, nesting deeper than ``max_depth`` and any object that is not plain data or an array.

    Iterative (an explicit stack), so a hostile nesting cannot exhaust Python's recursion limit.
    """
    plain = (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)
    done: set[int] = set()
    open_: set[int] = set()
    todo: list[tuple[object, int, bool]] = [(obj, 1, False)]
    while todo:
        node, depth, leaving = todo.pop()
        if leaving:
            open_.discard(id(node))
            done.add(id(node))
            continue
        if isinstance(node, plain):
            continue
        if not isinstance(node, (list, tuple, dict)):
            raise UnsafePickleError(f"the pickle holds a {type(node).__name__} (an unfinished array or a "
                                    "name used as a value); only plain data and arrays are allowed")
        if id(node) in open_:
            raise UnsafePickleError("the pickle holds a container that contains itself")
        if id(node) in done:
            continue
        if depth > max_depth:
            raise UnsafePickleError(f"containers are nested deeper than {max_depth} levels")
        open_.add(id(node))
        todo.append((node, depth, True))
        children = node.values() if isinstance(node, dict) else node
        todo.extend((child, depth + 1, False) for child in children)


def load_pickle(path: str | os.PathLike) -> object:
    """Read a pickle of plain data and numpy arrays (module docstring). Raises :class:`UnsafePickleError`
    for anything else and ``ValueError`` / ``EOFError`` for a truncated or corrupt stream."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise EOFError("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            obj = _run(_Reader(buf))
    check_structure(obj)
    return obj
