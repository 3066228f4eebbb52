"""A SHA-256 whose running state can be saved in the database between two requests.

A resumable upload's PATCHes may land on any worker of any host, and the object's SHA-256 is to be
computed as its bytes arrive, not by reading them all back at the end (for S3, from the bucket).
Python's ``hashlib`` cannot export a running hash, so this uses OpenSSL's ``SHA256_Init``,
``SHA256_Update`` and ``SHA256_Final`` through ctypes: their context (``SHA256_CTX``, 112 bytes of
plain integers) is the whole state, saved as bytes with the upload's offset. The state is only
meaningful on hosts of one byte order, as the hosts of one deployment are.

Where libcrypto cannot be loaded, ``available()`` is False and callers hash the object once it is
complete instead (``content.services.hash_object``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

CONTEXT_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len as 32-bit integers


@functools.cache
def _libcrypto():
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        for fn in (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final):
            fn.restype = ctypes.c_int
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    return _libcrypto() is not None


class ResumableSha256:
    """``update`` and ``hexdigest`` as hashlib's, plus ``state``: bytes to build it again from."""

    def __init__(self, state: bytes | None = None) -> None:
        lib = _libcrypto()
        if lib is None:
            raise RuntimeError("libcrypto is not available")
        self._lib = lib
        self._ctx = ctypes.create_string_buffer(CONTEXT_SIZE)
        if state is None:
            lib.SHA256_Init(self._ctx)
        else:
            if len(state) != CONTEXT_SIZE:
                raise ValueError(f"a SHA-256 state has {CONTEXT_SIZE} bytes, not {len(state)}")
            ctypes.memmove(self._ctx, state, CONTEXT_SIZE)

    def update(self, data: bytes) -> None:
        self._lib.SHA256_Update(self._ctx, bytes(data), len(data))

    @property
    def state(self) -> bytes:
        return self._ctx.raw

    def copy(self) -> ResumableSha256:
        return ResumableSha256(self.state)

    def hexdigest(self) -> str:
        """The digest of what was hashed so far (the running state is left as it was)."""
        ctx = ctypes.create_string_buffer(self._ctx.raw, CONTEXT_SIZE)
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctx)
        return out.raw.hex()
