"""HashingReader: the checksum is that of exactly the bytes handed out, in order, whether a chunk
was hashed in line or on a helper thread."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from content.hashing import OVERLAP_MIN, HashingReader


class Chunks(io.RawIOBase):
    """Hands out chunks of the given sizes, then b""."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.at = data, sizes, 0

    def read(self, size: int = -1) -> bytes:
        if not self.sizes:
            return b""
        n = self.sizes.pop(0)
        chunk, self.at = self.data[self.at : self.at + n], self.at + n
        return chunk


@pytest.mark.parametrize(
    "sizes",
    [
        [OVERLAP_MIN] * 7,  # every chunk on a helper thread
        [10, OVERLAP_MIN * 3, 1, OVERLAP_MIN, 5000, OVERLAP_MIN * 2 + 1],  # in line and on helpers, mixed
        [],  # nothing
    ],
)
def test_checksum_and_size_are_of_the_bytes_handed_out_in_order(sizes: list[int]) -> None:
    data = os.urandom(sum(sizes))
    reader = HashingReader(Chunks(data, list(sizes)))

    handed_out = b"".join(iter(lambda: reader.read(1 << 30), b""))

    assert handed_out == data
    assert reader.size == len(data)
    assert reader.checksum == "sha256:" + hashlib.sha256(data).hexdigest()


def test_an_error_of_the_stream_propagates_after_the_chunk_in_flight() -> None:
    class Failing(Chunks):
        def read(self, size: int = -1) -> bytes:
            if not self.sizes:
                raise ConnectionResetError("client went away")
            return super().read(size)

    data = os.urandom(OVERLAP_MIN * 2)
    reader = HashingReader(Failing(data, [OVERLAP_MIN * 2]))
    assert reader.read() == data

    with pytest.raises(ConnectionResetError):
        reader.read()
    assert reader.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
