"""Shared helpers: copies of the real fixture builds and a way to run the real CLI."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The browser fixture (Debian's chromium through Playwright) for the HTML and SVG tests.
pytest_plugins = ["tests.browser"]

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def answer_on_a_terminal(args: list[str], answer: bytes) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as stdin and stdout, answering the one
    "Run it here?" prompt with ``answer``; the exit code and everything it wrote."""
    import pty
    import select
    import signal

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        # Plain text to read back: buildtape colours its words on a terminal otherwise.
        env = {**os.environ, "NO_COLOR": "1"}
        os.execve(sys.executable, [sys.executable, "-m", "buildtape", *args], env)
    seen = b""
    answered = False
    # Read to the end, however long a loaded machine takes: a deadline on the whole run
    # would stop reading (the child then blocks on a full pty, or on a prompt never
    # answered). Only silence this long is a hang.
    while True:
        if not select.select([fd], [], [], 300)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)
            raise AssertionError(f"buildtape {args} wrote nothing for 300 s:\n{seen!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"Run it here?" in seen:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def buildtape(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed CLI as a user would, in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-m", "buildtape", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"buildtape {args} exited {proc.returncode}\nstdout:\n{proc.stdout.decode()}\n"
            f"stderr:\n{proc.stderr.decode()}"
        )
    return proc


def spawn_buildtape(*args: str | os.PathLike[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Start the CLI without waiting, for tests that signal it while it runs."""
    return subprocess.Popen([sys.executable, "-m", "buildtape", *map(str, args)], **popen)


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy a fixture build into a fresh directory (never build inside the repository)."""

    def copy(name: str, into: str = "") -> Path:
        dest = tmp_path / into / name
        shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("*.o", "app", "out"))
        return dest

    return copy


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """An OTLP endpoint on this machine where a connection is refused: a port held bound
    for the test and never listened on (a fixed port, such as 9, may have a listener)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/v1/traces"


def strace_usable() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-f", "-qq", "-e", "trace=none", "true"], capture_output=True)
    return probe.returncode == 0


needs_strace = pytest.mark.skipif(
    not strace_usable(), reason="strace is missing or ptrace is not permitted here"
)


def static_executable(tmp_path: Path, name: str, source: str) -> Path:
    """``source`` (C) built with ``cc -static`` as ``tmp_path/name``: a program the
    interposer cannot see into."""
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    exe = tmp_path / name
    built = subprocess.run(["cc", "-static", "-O1", "-o", exe, src], capture_output=True)
    if built.returncode != 0:
        pytest.fail(f"cc -static failed (install libc6-dev): {built.stderr.decode()}")
    return exe


def parse_strace(trace: str, root: str = "/w") -> Any:
    """A ``StraceParser`` fed ``trace`` line by line, every line understood."""
    from recorder.strace_parser import StraceParser

    p = StraceParser(root)
    for line in trace.splitlines():
        p.feed(line)
    assert p.unparsed == 0
    return p


def rewrite(src: Path, dst: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """Copy a tape through the real writer with its manifest changed (a crafted tape)."""
    from recorder.container import TapeReader, TapeWriter

    with TapeReader(src) as r:
        manifest = r.read_manifest()
        blobs = {d: r.read_blob(d) for d in r.blob_digests()}
    mutate(manifest)
    w = TapeWriter(dst)
    for data in blobs.values():
        w.add_blob(data)
    w.commit(manifest)
    return dst


# BUILDTAPE_TESTS_REQUIRE=strace,browser (CI sets it, see .ci/run): what this machine must
# have, so that a test skipped for want of it fails instead. With the switch set, every
# skip is a failure: a CI run that skipped the tests it exists to run is not green.
REQUIRE_VAR = "BUILDTAPE_TESTS_REQUIRE"
_REQUIREMENTS: dict[str, Callable[[], bool]] = {
    "strace": strace_usable,
    "browser": lambda: (
        importlib.util.find_spec("playwright") is not None and shutil.which("chromium") is not None
    ),
}


def _required() -> list[str]:
    return [n.strip() for n in os.environ.get(REQUIRE_VAR, "").split(",") if n.strip()]


def pytest_sessionstart(session: pytest.Session) -> None:
    unknown = [n for n in _required() if n not in _REQUIREMENTS]
    if unknown:
        raise pytest.UsageError(
            f"{REQUIRE_VAR}: unknown {', '.join(unknown)}; known: {', '.join(_REQUIREMENTS)}"
        )
    missing = [n for n in _required() if not _REQUIREMENTS[n]()]
    if missing:
        raise pytest.UsageError(f"{REQUIRE_VAR} requires {', '.join(missing)}, missing here")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if _required() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped while {REQUIRE_VAR} is set: {reason}"
