"""A restricted unpickler for the legacy pickles we must read (never for anything we write).

What it admits: plain containers (dict, list, tuple, set, frozenset, OrderedDict), numbers, strings,
bytes, and numpy arrays and scalars of plain dtypes. What it refuses, with :class:`UnsafePickleError`
naming the source, before anything runs or is allocated:

* any global outside the allow-list (a function, a class, ``os.system``, ``builtins.eval``…);
* numpy dtypes that hold references (object dtypes, structured dtypes with object fields, any dtype
  whose flags say it holds pointers or needs the Python API) — except the one way ``np.save`` wraps a
  pickled object: an object array whose items are themselves unpickled values, never raw bytes;
* arrays and scalars whose raw bytes do not match their shape and dtype;
* constructor calls that allocate from a number (``bytes(10**8)``), over-long number strings, and
  anything past the size caps: ``max_bytes`` of input, ``max_items`` container items and array
  elements in all. Object-building opcodes (NEWOBJ, INST, OBJ, extension codes, persistent ids) are
  refused outright.

It runs on the pure-Python unpickler so that every opcode that builds state goes through these checks.
:func:`decode_plain_pickle` is stricter still: no globals at all, for pickles of plain values.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 2**20  # the largest legacy pickle we read (the TPC-H ones are ≤ 100 kB)
MAX_ITEMS = 20_000_000  # container items and array elements, in all
_NUMBER_TEXT = 400  # the longest text a number may be parsed from
# numpy dtype flags that mean the items are references: NPY_ITEM_REFCOUNT / HASOBJECT (0x01),
# NPY_ITEM_IS_POINTER (0x04), NPY_NEEDS_PYAPI (0x10)
_REF_FLAGS = 0x01 | 0x04 | 0x10


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something outside the allow-list, or exceeds a size cap."""


class _NDArrayType:
    """Stands for ``numpy.ndarray`` on the unpickler's stack: only ``_reconstruct`` may use it."""


def _is_object_dtype(dt) -> bool:
    import numpy as np

    return dt.kind == "O" and dt.names is None and dt.subdtype is None and dt.itemsize == np.dtype(object).itemsize


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one: its dispatch table can be checked
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str, max_items: int):
        super().__init__(file, encoding="latin1")
        self._source = source
        self._items_left = max_items

    # ------------------------------------------------------------------------------------ helpers
    def _refuse(self, what: str):
        raise UnsafePickleError(f"{self._source}: refused {what}; only plain containers, numbers and numpy arrays "
                                "of plain dtypes are allowed in data pickles")

    def _spend(self, n: int) -> None:
        self._items_left -= int(n)
        if self._items_left < 0:
            raise UnsafePickleError(f"{self._source}: more than the allowed {MAX_ITEMS:,} items in all")

    def _checked_dtype(self, dt):
        import numpy as np

        if not isinstance(dt, np.dtype):
            self._refuse(f"a dtype of type {type(dt).__name__}")
        if _is_object_dtype(dt):
            return dt  # only usable with items that are unpickled values (see _build_array)
        if dt.hasobject or dt.flags & _REF_FLAGS:
            self._refuse(f"dtype {dt!r}, which holds references")
        return dt

    # -------------------------------------------------------------------------- allowed callables
    def _container(self, kind):
        def make(*args):
            if len(args) > 1:
                self._refuse(f"{kind.__name__}() with {len(args)} arguments")
            items = args[0] if args else ()
            if not isinstance(items, (list, tuple, dict, set, frozenset, str, bytes)):
                self._refuse(f"{kind.__name__}() of a {type(items).__name__}")
            self._spend(len(items))
            return kind(items)
        return make

    def _number(self, kind):
        def make(*args):
            if len(args) > 2 or any(isinstance(a, (str, bytes)) and len(a) > _NUMBER_TEXT for a in args):
                self._refuse(f"{kind.__name__}() of {len(args)} argument(s) or over-long text")
            if not all(isinstance(a, (str, bytes, int, float, complex, bool)) for a in args):
                self._refuse(f"{kind.__name__}() of a non-number")
            return kind(*args)
        return make

    def _text(self, kind):
        def make(*args):
            if not args or len(args) > 3 or not isinstance(args[0], (str, bytes)) or \
                    not all(isinstance(a, str) for a in args[1:]):
                self._refuse(f"{kind.__name__}() of anything but text")  # bytes(10**8) is refused here
            self._spend(len(args[0]))
            return kind(*args)
        return make

    def _dtype(self, spec, align=False, copy=False):
        import numpy as np

        if not isinstance(spec, str) or len(spec) > 32:
            self._refuse("a dtype not given by a short type string")
        try:
            dt = np.dtype(spec, bool(align), True)  # always a copy: BUILD must never touch numpy's own dtypes
        except TypeError as exc:
            raise pickle.UnpicklingError(f"{self._source}: bad dtype {spec!r} ({exc})") from None
        return self._checked_dtype(dt)

    def _reconstruct(self, subtype, shape, typecode):
        import numpy as np

        if subtype is not _NDArrayType or not isinstance(shape, tuple) or not isinstance(typecode, (bytes, str)):
            self._refuse("numpy _reconstruct of anything but an empty ndarray")
        if not all(isinstance(s, int) and 0 <= s for s in shape) or math.prod(shape) > 0:
            self._refuse(f"numpy _reconstruct of shape {shape!r} (np.save writes an empty one, then sets its state)")
        return np.empty(shape, dtype=np.uint8)  # what numpy's _reconstruct makes; BUILD then sets its state

    def _scalar(self, dtype, data=None):
        import numpy as np

        dt = self._checked_dtype(dtype)
        if _is_object_dtype(dt):
            self._refuse("a numpy scalar of object dtype")
        if not isinstance(data, bytes) or len(data) != dt.itemsize:
            self._refuse(f"a numpy {dt} scalar from {type(data).__name__} of the wrong size")
        return np.frombuffer(data, dtype=dt, count=1)[0].copy()

    def _frombuffer(self, buf, dtype, shape, order):
        """How protocol-5 pickles carry an array: its bytes, dtype, shape and order."""
        import numpy as np

        dt = self._checked_dtype(dtype)
        if _is_object_dtype(dt) or not isinstance(shape, tuple) or \
                not all(isinstance(x, int) and x >= 0 for x in shape) or order not in ("C", "F"):
            self._refuse("numpy _frombuffer of an object dtype or a bad shape")
        raw = bytes(buf) if isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) else None
        n = math.prod(shape)
        if raw is None or len(raw) != n * dt.itemsize:
            self._refuse(f"numpy _frombuffer of {n} × {dt} from the wrong number of bytes")
        self._spend(n)
        return np.frombuffer(raw, dtype=dt).reshape(shape, order=order).copy()

    def _encode(self, text, encoding="latin1"):
        """``_codecs.encode``: how protocol-2 pickles carry bytes (text + "latin1")."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            self._refuse("_codecs.encode of anything but latin-1 text")
        self._spend(len(text))
        return text.encode("latin1")

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and (module, name) in _compat_pickle.NAME_MAPPING:  # Python-2 names
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif self.proto < 3:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        allowed = {
            ("_codecs", "encode"): lambda: self._encode,
            ("builtins", "dict"): lambda: self._container(dict),
            ("builtins", "list"): lambda: self._container(list),
            ("builtins", "tuple"): lambda: self._container(tuple),
            ("builtins", "set"): lambda: self._container(set),
            ("builtins", "frozenset"): lambda: self._container(frozenset),
            ("collections", "OrderedDict"): lambda: self._container(OrderedDict),
            ("builtins", "int"): lambda: self._number(int),
            ("builtins", "float"): lambda: self._number(float),
            ("builtins", "complex"): lambda: self._number(complex),
            ("builtins", "bool"): lambda: self._number(bool),
            ("builtins", "str"): lambda: self._text(str),
            ("builtins", "bytes"): lambda: self._text(bytes),
            ("numpy", "dtype"): lambda: self._dtype,
            ("numpy", "ndarray"): lambda: _NDArrayType,
            ("numpy.core.multiarray", "_reconstruct"): lambda: self._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): lambda: self._reconstruct,
            ("numpy.core.multiarray", "scalar"): lambda: self._scalar,
            ("numpy.core.numeric", "_frombuffer"): lambda: self._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): lambda: self._frombuffer,
            ("numpy._core.multiarray", "scalar"): lambda: self._scalar,
        }
        if (module, name) not in allowed:
            self._refuse(f"to load global {module}.{name}")
        return allowed[(module, name)]()

    # ------------------------------------------------------------------------------- state opcodes
    def _build(self):
        import numpy as np

        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, np.dtype):
            if not isinstance(state, tuple) or len(state) > 9:
                self._refuse("a dtype state that is not a short tuple")
            inst.__setstate__(state)
            self._checked_dtype(inst)  # flags or fields set by the state are checked too
        elif isinstance(inst, np.ndarray):
            self._build_array(inst, state)
        else:
            self._refuse(f"setting the state of a {type(inst).__name__}")

    def _build_array(self, inst, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            self._refuse("an ndarray state that is not (version, shape, dtype, fortran, data)")
        shape, dtype, fortran, data = state[-4:]
        if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
            self._refuse(f"an ndarray shape {shape!r}")
        dt = self._checked_dtype(dtype)
        n = math.prod(shape)
        self._spend(n)
        if _is_object_dtype(dt):
            if not isinstance(data, list) or len(data) != n:  # items must be unpickled values, never addresses
                self._refuse("an object array built from raw bytes")
        elif not isinstance(data, (bytes, bytearray)) or len(data) != n * dt.itemsize:
            self._refuse(f"an ndarray of {n} × {dt} from {len(data) if isinstance(data, bytes) else '?'} bytes")
        inst.__setstate__(state)



_RestrictedUnpickler.dispatch[pickle.BUILD[0]] = _RestrictedUnpickler._build


def _counted(op: bytes, items):
    """Charge the items an opcode adds to a container (after MARK, ``self.stack`` holds them)."""
    original = pickle._Unpickler.dispatch[op[0]]

    def load(self):
        self._spend(items(self))
        original(self)
    _RestrictedUnpickler.dispatch[op[0]] = load


_counted(pickle.APPENDS, lambda self: len(self.stack))
_counted(pickle.SETITEMS, lambda self: len(self.stack) // 2)
_counted(pickle.ADDITEMS, lambda self: len(self.stack))
_counted(pickle.APPEND, lambda self: 1)
_counted(pickle.SETITEM, lambda self: 1)
for _op, _what in ((pickle.NEWOBJ, "NEWOBJ"), (pickle.NEWOBJ_EX, "NEWOBJ_EX"), (pickle.INST, "INST"),
                   (pickle.OBJ, "OBJ"), (pickle.EXT1, "EXT1"), (pickle.EXT2, "EXT2"), (pickle.EXT4, "EXT4"),
                   (pickle.PERSID, "persistent ids"), (pickle.BINPERSID, "persistent ids")):
    _RestrictedUnpickler.dispatch[_op[0]] = lambda self, what=_what: self._refuse(f"the {what} opcode")


def restricted_loads(data: bytes, source: str = "<bytes>", max_items: int = MAX_ITEMS) -> Any:
    """Unpickle ``data`` admitting only plain containers, numbers and numpy arrays of plain dtypes."""
    if len(data) > MAX_BYTES:
        raise UnsafePickleError(f"{source}: {len(data):,} bytes, over the {MAX_BYTES:,}-byte cap for data pickles")
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source, max_items).load()
    except UnsafePickleError:
        raise
    except RecursionError:
        raise UnsafePickleError(f"{source}: nested too deeply") from None
    except Exception as exc:  # truncated or corrupt pickles
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def decode_plain_pickle(data: bytes, source: str = "<bytes>", max_items: int = 1_000_000) -> Any:
    """A pickle of plain values only (lists, tuples, dicts, numbers, strings): no global is admitted."""
    class _Plain(_RestrictedUnpickler):
        def find_class(self, module, name):
            self._refuse(f"global {module}.{name} (plain values only)")

    if len(data) > MAX_BYTES:
        raise UnsafePickleError(f"{source}: {len(data):,} bytes, over the {MAX_BYTES:,}-byte cap")
    try:
        return _Plain(io.BytesIO(data), source, max_items).load()
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def load_legacy_pickle(path: str | Path) -> Any:
    """Read a legacy pickle file, or a ``.npy`` whose payload is a pickled object, safely.

    ``np.save`` of a dict writes a ``.npy`` with an object array whose data is a pickle; we parse the
    ``.npy`` header ourselves and hand the payload to the restricted unpickler. A 0-d object array
    is returned as the object it holds.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UnsafePickleError(f"{path}: {size:,} bytes, over the {MAX_BYTES:,}-byte cap for data pickles")
        raw = path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:6] == b"\x93NUMPY":
        import numpy as np

        buf = io.BytesIO(raw)
        try:
            version = np.lib.format.read_magic(buf)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                version, np.lib.format.read_array_header_2_0)
            shape, _fortran, dtype = read_header(buf)  # header only; the data is not touched
        except ValueError as exc:
            raise pickle.UnpicklingError(f"{path}: not a readable .npy file ({exc})") from None
        if dtype.hasobject:
            obj = restricted_loads(buf.read(), str(path))
            if isinstance(obj, np.ndarray) and obj.shape == () and shape == ():
                return obj.item()
            return obj
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise pickle.UnpicklingError(f"{path}: not a readable .npy file ({exc})") from None
    if zipfile.is_zipfile(path):
        raise UnsafePickleError(f"{path}: zip archives are not legacy data pickles")
    return restricted_loads(raw, str(path))
