"""The normalisation rules: each volatile part becomes its placeholder, and can be turned off."""

from __future__ import annotations

import pytest

from recorder.normalize import Normalizer, is_bookkeeping

N = Normalizer("/home/ci/work/proj")

RULES = [
    ("/home/ci/work/proj/src/main.c", "$WORKSPACE/src/main.c"),
    ("-I/home/ci/work/proj/include", "-I$WORKSPACE/include"),
    ("/tmp/buildtape-replay-k2j4_x/workspace/a.c", "$SANDBOX/workspace/a.c"),
    ("-o /tmp/ccAb3dE9.s", "-o $TMP"),
    ("/tmp/cc9XyZ0a.ltrans0.ltrans.o", "$TMP"),
    ("/tmp/pip-build-env-ab12cd34/overlay", "$TMP/overlay"),
    ("/tmp/pip-modern-metadata-9x8y7z6w", "$TMP"),
    ("/tmp/go-build2719372813/b001/_pkg_.a", "$TMP/b001/_pkg_.a"),
    ("/tmp/rustcAbC123/symbols.o", "$TMP/symbols.o"),
    ("/tmp/cargo-installQ1w2E3", "$TMP"),
    ("/tmp/tmpa1b2c3d4/setup.py", "$TMP/setup.py"),
    ("CMakeFiles/CMakeScratch/TryCompile-Ab12Cd/cmTC_1a2b3.dir", "CMakeFiles/CMakeScratch/cmTC_$ID/cmTC_$ID.dir"),
    ("build/CMakeCache.txt.tmp0f551", "build/CMakeCache.txt.tmp$ID"),
    # meson's compiler checks, in the build directory
    ("build/meson-private/tmp6s0ddt_g/testfile.c", "build/meson-private/$TMP/testfile.c"),
    ("build/meson-private/tmpfile.txt", "build/meson-private/tmpfile.txt"),
    # make regenerating configure: autom4te's and autoheader's temp dirs, automake's $$ names
    ("m4 --nesting-limit=1024 /tmp/am4tJVf9Xm/traces.m4", "m4 --nesting-limit=1024 $TMP/traces.m4"),
    ("sed 's/^/| /' /tmp/ahxGrV5o/traces.pl", "sed 's/^/| /' $TMP/traces.pl"),
    ("/tmp/ahead/notes", "/tmp/ahead/notes"),
    ("cmp -s vti.tmp7128 ./version.texi.tmp7128", "cmp -s vti.tmp$PID ./version.texi.tmp$PID"),
    ("rm -rf .am7171 && mkdir .am7171", "rm -rf .am$PID && mkdir .am$PID"),
    ("rm -f vti.tmp7128 ./version.texi.7128", "rm -f vti.tmp$PID ./version.texi.$PID"),
    ("libfoo.am12", "libfoo.am12"),
    # gzip's gnulib configure and GNU make's copy of a makefile read from stdin
    ("/tmp/cgSQhxur/dummy.c", "$TMP/dummy.c"),
    ("/tmp/Gm13w68x", "$TMP"),
    ("/tmp/cgroups/x", "/tmp/cgroups/x"),
    # autoconf: its private directory and the files it names for its pid
    ("rm -fr ./confRpDT7k", "rm -fr ./conf$TMP"),
    ("./conf3fUitc/out", "./conf$TMP/out"),
    ("-I conftestd2 confdefs.h config/x", "-I conftestd2 confdefs.h config/x"),
    ("conf2838subs.sh", "conf$PIDsubs.sh"),
    ("worker pid 4242 started", "worker pid $PID started"),
    ("/proc/4242/status", "/proc/$PID/status"),
    ("built at 2026-12-01T17:22:50Z", "built at $TIME"),
    ("Tue Dec  1 17:22:50 UTC 2026", "$TIME"),
    ("[17:22:50.123] done", "[$TIME] done"),
    ("\x1b[01m\x1b[Kmul.c:2:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror:\x1b[m\x1b[K x", "mul.c:2: error: x"),
    ("\x1b[38;5;196mred\x1b[0m", "red"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), RULES, ids=[r[0] for r in RULES])
def test_each_rule(raw: str, expected: str) -> None:
    assert N.text(raw) == expected


def test_off_means_as_recorded() -> None:
    off = Normalizer("/home/ci/work/proj", enabled=False)
    for raw, _ in RULES:
        assert off.text(raw) == raw
        assert off.content(raw.encode()) == raw.encode()


def test_contents_text_and_binary() -> None:
    cache = b"CMAKE_HOME_DIRECTORY:INTERNAL=/home/ci/work/proj\n"
    assert N.content(cache) == b"CMAKE_HOME_DIRECTORY:INTERNAL=$WORKSPACE\n"
    # A -g object names its compile directory: replaced byte for byte, binaries stay binary.
    obj = b"\x7fELF\x02\x01\x00/home/ci/work/proj\x00main.c\x00"
    assert N.content(obj) == b"\x7fELF\x02\x01\x00$WORKSPACE\x00main.c\x00"


def test_gnu_build_id_is_masked() -> None:
    note = b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00"
    a = b"\x7fELF" + b"\x00" * 12 + note + bytes(range(20)) + b"rest"
    b = b"\x7fELF" + b"\x00" * 12 + note + bytes(range(1, 21)) + b"rest"
    assert a != b and N.content(a) == N.content(b)
    assert N.content(a).endswith(bytes(20) + b"rest")


def test_bookkeeping_files() -> None:
    assert is_bookkeeping("build/.ninja_log") and is_bookkeeping(".ninja_deps")
    assert not is_bookkeeping("build/build.ninja")
