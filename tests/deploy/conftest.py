"""Deployment tests: configuration files, gunicorn start-up, and end-to-end runs (marker ``e2e``)."""


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "e2e: starts real servers (gunicorn, nginx) against PostgreSQL/Redis; slow. "
        "Skips when tools are missing unless MEDIASTORE_REQUIRE_E2E is set.",
    )
