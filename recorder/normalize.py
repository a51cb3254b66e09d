"""Rewrite what is expected to differ between two runs of one build, so that ``diff``, replay
and the history can match steps, lines and file contents across recordings.

Each rule replaces a volatile part with a fixed placeholder (docs/replay.md lists them):

- the workspace root of the recording (``$WORKSPACE``), in argv, streams and file contents,
  binary contents included (byte for byte: a ``-g`` object names its compile directory);
- buildtape's own temp and sandbox directories, ``/tmp/buildtape-…`` (``$SANDBOX``);
- temp names of common tools (``$TMP``): gcc/clang ``/tmp/ccAbC123.s``, pip
  ``/tmp/pip-build-env-…``, Go ``/tmp/go-build123…``, rustc ``/tmp/rustcAbC123``, cargo
  ``/tmp/cargo-install…``, Python's ``tempfile`` ``/tmp/tmpab12cd34`` (and meson's compiler
  checks' ``meson-private/tmpab12cd34``), gnulib configure's
  ``/tmp/cgAbC123``, GNU make's ``/tmp/GmAbC123``, autom4te's ``/tmp/am4tAbC123`` and
  autoheader's ``/tmp/ahAbC123``, autoconf's ``./confAbC123`` (``conf$TMP``),
  CMake's try-compile projects ``cmTC_1a2b3`` and ``TryCompile-…`` and its
  ``CMakeCache.txt.tmp1a2b3`` (``.tmp$ID``);
- pids written as ``pid 123``, ``pid=123``, ``/proc/123/``, in zlib's configure test
  files ``ztest123.c``, autoconf's ``conf123subs.sh`` and automake's ``vti.tmp123``,
  ``version.texi.123``, ``version.texi.tmp123`` and ``.am123`` (``$PID``);
- timestamps in text: ISO dates with time, ``HH:MM:SS``, ``date``'s default format (``$TIME``);
- the GNU build id of ELF files (a hash of the rest, which is compared itself);
- colour: SGR sequences and ``ESC[K`` in text (a build run in a terminal colours its
  diagnostics, the same build in CI does not; the words are what is compared).

Build-system bookkeeping files (ninja's ``.ninja_log``, autoconf's ``config.log``, CMake's
configure logs, ctest's and cargo's records of a run...) differ on every run and are not compared
at all (:func:`is_bookkeeping`): the one definition that ``diff`` and replay's verdict share.
``Normalizer(workspace, enabled=False)``
turns every rule off (``buildtape diff --no-normalize``).
"""

from __future__ import annotations

import re
import shlex

_TEMP_PARTS = (
    r"cc[A-Za-z0-9]{6}\.[A-Za-z0-9_.]+",  # gcc, clang: ccAbC123.s, .o, .res, .ld, .ltrans0.o
    r"pip-[a-z]+(?:-[a-z]+)*-[a-z0-9_]{8}(?![a-z0-9_])",  # pip-build-env-…, pip-wheel-…
    r"go-build\d+",  # go build's work directory
    r"rustc[A-Za-z0-9]{6}",  # rustc's temp directory
    r"cargo-install[A-Za-z0-9]+",  # cargo install's target directory
    r"tmp[a-z0-9_]{8}",  # Python's tempfile
    # gnulib configure's mktemp -d "$TMPDIR/cgXXXXXX", GNU make's copy of `make -f -`
    r"(?:cg|Gm)[A-Za-z0-9]{6}(?![A-Za-z0-9])",
    # autom4te's mktemp -d "$TMPDIR/am4tXXXXXX" and autoheader's File::Temp "ahXXXXXX", run
    # when make regenerates configure (a checkout that did not keep the files' mtimes)
    r"(?:am4t|ah)[A-Za-z0-9_]{6}(?![A-Za-z0-9_])",
)
_TEMP = re.compile(r"(?:/(?:var/)?tmp|\$TMPDIR)/(?:" + "|".join(_TEMP_PARTS) + r")")
_SANDBOX = re.compile(r"/tmp/buildtape-[A-Za-z0-9_-]+")
_CMAKE = re.compile(r"\bcmTC_[0-9a-f]{4,}\b|\bTryCompile-[A-Za-z0-9]{6}\b")
# autoconf's private directory, mktemp -d ./confXXXXXX (its config.status writes through it)
_CONF_TMP = re.compile(
    r"(?<![\w.-])conf(?!test)(?=[A-Za-z0-9]{0,5}[A-Z0-9])[A-Za-z0-9]{6}(?![\w.-])"
)
_CMAKE_TMP = re.compile(r"(?<=\.txt)\.tmp[0-9a-f]{4,}\b")
# meson's compiler checks, each in a tempfile.mkdtemp(dir="build/meson-private")
_MESON_TMP = re.compile(r"(?<=meson-private/)tmp[a-z0-9_]{8}(?![a-z0-9_])")
_TIMESTAMP = re.compile(
    r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?\b"
    r"|\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d+ "
    r"\d\d:\d\d:\d\d( [A-Z]{2,5})? \d{4}\b"
    r"|\b\d\d:\d\d:\d\d(\.\d+)?\b"
)
_COLOUR = re.compile(r"\x1b\[[0-9;:]*[mK]")
_PID = re.compile(
    r"\b(pid[ =:]?)\d+\b|(/proc/)\d+(?=/)|\b(ztest)\d+\b"
    # autoconf's conf$$subs.sh, conf$$.file, confstat$$-…: named for configure's own pid
    r"|\b(conf(?:stat)?)\d+(?=subs|\.|-|\b)"
    # automake's texinfo rules: vti.tmp$$, version.texi.tmp$$, the scratch directory .am$$
    r"|(?<![\w-])(vti\.tmp|version\.texi\.(?:tmp)?|\.am)\d+\b",
    re.I,
)

_TEMP_B = re.compile(_TEMP.pattern.encode())
_SANDBOX_B = re.compile(_SANDBOX.pattern.encode())
_CMAKE_B = re.compile(_CMAKE.pattern.encode())
_MESON_TMP_B = re.compile(_MESON_TMP.pattern.encode())

# An ELF NT_GNU_BUILD_ID note (little-endian): namesz 4, descsz, type 3, "GNU\0", then the id.
_BUILD_ID = re.compile(rb"\x04\x00\x00\x00([\x08-\x40])\x00\x00\x00\x03\x00\x00\x00GNU\x00", re.S)


def _mask_build_ids(data: bytes) -> bytes:
    """Zero each GNU build id: a hash over the rest of the file, so it differs exactly when
    anything else does (a workspace path in the debug info, say), which is compared anyway."""
    out = bytearray(data)
    for m in _BUILD_ID.finditer(data):
        size = m.group(1)[0]
        out[m.end() : m.end() + size] = bytes(size)
    return bytes(out)


# Files a build system keeps for itself that differ on every run by design, matched by name
# (documented in docs/replay.md). Never compared, by diff or by replay's verdict: ninja's log
# (start and end times) and deps log (keyed by mtimes); CMake's configure logs, which name
# try-compile directories with random suffixes (cmTC_1a2b3); cargo's cache of rustc's answers
# (a JSON map written in hash order); autoconf's configure log (the date, the host, process
# ids and conftest temp names) and meson's (its start time, each check's temp directory).
BOOKKEEPING = (
    ".ninja_log",
    ".ninja_deps",
    "CMakeOutput.log",
    "CMakeError.log",
    "CMakeConfigureLog.yaml",
    ".rustc_info.json",
    "config.log",
    "meson-log.txt",
)

# ctest's record of a run, in Testing/Temporary/: LastTest.log holds the start and end
# times and each test's duration, CTestCostData.txt the durations ctest schedules by.
_CTEST_LOG = re.compile(r"LastTest(_\d{8}-\d{4})?\.log|CTestCostData\.txt")


def is_bookkeeping(path: str) -> bool:
    """A build system's own record that differs on every run: one of ``BOOKKEEPING`` by
    name, ctest's logs of a run (``Testing/Temporary/LastTest.log``), autom4te's cache of
    requests (a Perl hash dumped in its per-process random order), meson's pickled state
    (``meson-private/coredata.dat`` holds random GUIDs for its Visual Studio backend,
    ``build.dat`` objects pickled in hash order), or cargo's
    incremental-compilation cache (``target/debug/incremental/…``: its session directories
    are named by the time and a random number)."""
    parts = path.split("/")
    if parts[-1] in BOOKKEEPING or parts[-2:] == ["autom4te.cache", "requests"]:
        return True
    if parts[-2:-1] == ["meson-private"] and parts[-1].endswith(".dat"):
        return True
    if parts[-3:-1] == ["Testing", "Temporary"] and _CTEST_LOG.fullmatch(parts[-1]):
        return True
    return "incremental" in parts[1:-1] and "target" in parts[: parts.index("incremental")]


def _pid(m: re.Match[str]) -> str:
    return (m.group(1) or m.group(2) or m.group(3) or m.group(4) or m.group(5)) + "$PID"


class Normalizer:
    """The rules above for one recording (its workspace root); ``enabled=False``: none."""

    def __init__(self, workspace: str, enabled: bool = True) -> None:
        self.workspace = workspace.rstrip("/") if workspace != "/" else ""
        self.enabled = enabled

    def text(self, s: str) -> str:
        if not self.enabled:
            return s
        if "\x1b" in s:
            s = _COLOUR.sub("", s)
        if self.workspace:
            s = s.replace(self.workspace, "$WORKSPACE")
        s = _SANDBOX.sub("$SANDBOX", s)
        s = _TEMP.sub("$TMP", s)
        s = _CMAKE.sub("cmTC_$ID", s)
        s = _CMAKE_TMP.sub(".tmp$ID", s)
        s = _MESON_TMP.sub("$TMP", s)
        s = _CONF_TMP.sub("conf$TMP", s)
        s = _TIMESTAMP.sub("$TIME", s)
        return _PID.sub(_pid, s)

    def content(self, data: bytes) -> bytes:
        """File contents: text gets every rule; binary data the path and temp-name rules."""
        if not self.enabled:
            return data
        if b"\0" not in data:
            try:
                return self.text(data.decode("utf-8")).encode("utf-8")
            except UnicodeDecodeError:
                pass
        if self.workspace:
            data = data.replace(self.workspace.encode(), b"$WORKSPACE")
        if data[:4] == b"\x7fELF":
            data = _mask_build_ids(data)
        data = _SANDBOX_B.sub(b"$SANDBOX", data)
        data = _TEMP_B.sub(b"$TMP", data)
        data = _MESON_TMP_B.sub(b"$TMP", data)
        return _CMAKE_B.sub(b"cmTC_$ID", data)

    def argv(self, argv: list[str]) -> list[str]:
        return [self.text(a) for a in argv]

    def command_key(self, argv: list[str]) -> str:
        """One string per step command, the same for the same step in another recording."""
        return shlex.join(self.argv(argv))
