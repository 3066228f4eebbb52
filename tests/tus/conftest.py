"""Fixtures of the tus tests: the content tests' stores of every type."""

from tests.content.conftest import s3cfg, store_for  # noqa: F401  (fixtures)
