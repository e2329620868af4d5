"""SHA-256 inside numba kernels: OpenSSL's ``SHA256`` called through a function pointer.

Python's ``hashlib`` wraps OpenSSL too, but holds the GIL for inputs under 2 KiB (a record
is about 1.7 KB at dim 384), so per-record digests cannot run in parallel there. Kernels
here call libcrypto's one-shot ``SHA256(data, n, out)`` directly: the address is passed as
an integer argument (so kernels stay cacheable on disk), the call needs no GIL, and the
digest is SHA-256 bit for bit (the tests compare with ``hashlib`` on every path).

:data:`SHA256_FN` is that address, or 0 when libcrypto cannot be loaded or the JIT is off
(``NUMBA_DISABLE_JIT=1``); callers then use :func:`sha256_py`, the hashlib fallback, and
get the same digests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

__all__ = ["SHA256_FN", "sha256_at", "sha256_py", "use_kernels"]


def _load() -> int:
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0") or os.environ.get("VALORI_NO_LIBCRYPTO"):
        return 0
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).SHA256
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        fn.restype = ctypes.c_void_p
        probe = ctypes.create_string_buffer(32)
        fn(b"abc", 3, probe)
        if probe.raw == hashlib.sha256(b"abc").digest():
            return int(ctypes.cast(fn, ctypes.c_void_p).value or 0)
    return 0


#: Address of libcrypto's ``SHA256``, or 0 (use the hashlib fallback).
SHA256_FN = _load()


def use_kernels() -> bool:
    """True when the numba SHA-256 path is available."""
    return SHA256_FN != 0


@intrinsic
def sha256_at(typingctx, fn, data, n, out):  # type: ignore[no-untyped-def]
    """``SHA256(data, n, out)`` through the function pointer ``fn`` (all arguments are
    integers: addresses and a length). For use inside njit kernels only."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn_addr, data_addr, length, out_addr = args
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(i8p, [i8p, ir.IntType(64), i8p])
        target = builder.inttoptr(fn_addr, fnty.as_pointer())
        builder.call(target, [builder.inttoptr(data_addr, i8p), length, builder.inttoptr(out_addr, i8p)])
        return context.get_dummy_value()

    return types.void(types.intp, types.intp, types.intp, types.intp), codegen


def sha256_py(data: bytes | memoryview | np.ndarray) -> bytes:
    """The fallback: ``hashlib.sha256(data).digest()``."""
    return hashlib.sha256(bytes(data)).digest()

