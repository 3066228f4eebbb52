"""The Python examples of the README and docs/, as the tests run them: taken from the page as
written, with the lines that assign the reader's own settings (server address, token, broker URL,
...) taken out, so that a test supplies its own values under the same names."""

from __future__ import annotations

import re
import threading

from tests.support.processes import REPO


def doc_example(page: str, index: int, settings: list[str]) -> str:
    """The ``index``-th ``python`` block of ``page`` (a path below the repository, e.g.
    ``docs/events.md``), without its top-level assignments of ``settings`` (each must be there: an
    example that stops naming one would otherwise run with the test's value unseen)."""
    code = (REPO / page).read_text().split("```python\n")[index + 1].split("```", 1)[0]
    for name in settings:
        assignment = re.compile(rf"^{re.escape(name)} = .*\n", re.MULTILINE)
        assert assignment.search(code), f"the example {index} of {page} no longer assigns {name}"
        code = assignment.sub("", code, count=1)
    return code


def run_example(code: str, names: dict[str, object], stop: type[BaseException], seconds: float) -> dict:
    """Run ``code`` with ``names`` on a daemon thread (an example that never returns dies with the
    test process) until it raises ``stop``; {"delivered": True}, or what went wrong."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            exec(code, dict(names))
        except stop:
            outcome["delivered"] = True
        except Exception as exc:  # reported by the caller's assertion, with the example's error
            outcome["error"] = repr(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    if thread.is_alive():
        outcome["error"] = f"the example was still running after {seconds} s"
    return outcome
