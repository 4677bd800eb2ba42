"""A restricted unpickler for the legacy pickles we must read (never for anything we write).

Admits only plain containers, numbers, strings and numpy arrays/scalars; any other global (a
function, a class, ``os.system``, ``builtins.eval``…) is refused with :class:`UnsafePickleError`
before it can run.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

# The only globals a legacy data pickle of ours may reference: how numpy reconstructs arrays and
# scalars, and the plain builtin containers.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "tuple"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("builtins", "complex"),
    ("builtins", "bool"),
    ("builtins", "str"),
    ("builtins", "bytes"),
    ("collections", "OrderedDict"),
    ("copy_reg", "_reconstructor"),  # Python-2 pickles of numpy objects
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            import importlib

            return getattr(importlib.import_module(module), name)
        raise UnsafePickleError(
            f"{self._source}: refused to load global {module}.{name}; only plain containers, numbers "
            "and numpy arrays are allowed in data pickles"
        )

    def persistent_load(self, pid):  # pragma: no cover - data pickles never use it
        raise UnsafePickleError(f"{self._source}: persistent ids are not allowed")


def restricted_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` admitting only plain containers, numbers and numpy arrays."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or corrupt pickles
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({exc})") from exc


def load_legacy_pickle(path: str | Path) -> Any:
    """Read a legacy pickle file, or a ``.npy`` whose payload is a pickled object, safely.

    ``np.save`` of a dict writes a ``.npy`` with an object array whose data is a pickle; we parse the
    ``.npy`` header ourselves and hand the payload to the restricted unpickler. A 0-d object array
    is returned as the object it holds.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:6] == b"\x93NUMPY":
        import numpy as np

        buf = io.BytesIO(raw)
        version = np.lib.format.read_magic(buf)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
        shape, _fortran, dtype = read_header(buf)  # header only; the data is not touched
        if dtype.hasobject:
            obj = restricted_loads(buf.read(), str(path))
            if isinstance(obj, np.ndarray) and obj.shape == () and shape == ():
                return obj.item()
            return obj
        return np.load(path, allow_pickle=False)
    if zipfile.is_zipfile(path):
        raise UnsafePickleError(f"{path}: zip archives are not legacy data pickles")
    return restricted_loads(raw, str(path))
