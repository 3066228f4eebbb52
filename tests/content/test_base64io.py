"""content/base64io.py: piecewise encoding for downloads, strict decoding of raw bytes."""

from __future__ import annotations

import base64
import random

import pytest

from content.base64io import base64_chunks, decode_base64
from mediastore.errors import RuleViolation


@pytest.mark.parametrize("seed", range(20))
def test_piecewise_encoding_is_the_encoding_of_the_whole_however_it_is_cut(seed):
    rng = random.Random(seed)
    data = rng.randbytes(rng.randint(0, 200))
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 12))))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    pieces = list(base64_chunks(iter(chunks)))
    assert b"".join(pieces) == base64.b64encode(data)
    assert all(len(piece) % 4 == 0 and piece for piece in pieces)  # each piece decodes alone


def test_one_byte_chunks_are_grouped_in_threes():
    assert list(base64_chunks(iter([b"a", b"b", b"c", b"d"]))) == [b"YWJj", b"ZA=="]


@pytest.mark.parametrize("kind", [str, bytes, memoryview])
def test_decoding_takes_text_bytes_or_a_view_of_them(kind):
    encoded = base64.b64encode(b"\x00\xffhello")
    value = encoded.decode() if kind is str else kind(encoded)
    assert decode_base64(value) == b"\x00\xffhello"


@pytest.mark.parametrize("bad", [b"QUJD\n", b"QUJ", b"QU=D", b"QUJ=", b"QUJD====", "QUJ\u00e9"])
def test_decoding_is_strict_for_views_too(bad):
    value = memoryview(bad) if isinstance(bad, bytes) else bad
    with pytest.raises(RuleViolation):
        decode_base64(value)
