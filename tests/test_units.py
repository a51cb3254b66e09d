"""Unit tests of the pure pieces: strace line parsing, secret policy, scrubbing, events."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.events import parse_event_line
from recorder.secrets import REDACTED, Scrubber, SecretPolicy, redact_environment
from recorder.strace_parser import StraceParser, parse_call

TRACE = """\
100 1000.000000 execve("/usr/bin/make", ["make", "-C", "sub"], 0x7ffe /* 35 vars */) = 0
100 1000.001000 chdir("sub") = 0
100 1000.002000 openat(AT_FDCWD, "Makefile", O_RDONLY) = 3
100 1000.003000 vfork( <unfinished ...>
101 1000.003500 execve("/usr/bin/cc", ["cc", "-c", "a b.c", "-DX=\\303\\251"], 0x1 /* 3 vars */ <unfinished ...>
100 1000.004000 <... vfork resumed>) = 101
101 1000.005000 <... execve resumed>) = 0
101 1000.006000 openat(AT_FDCWD, "a b.c", O_RDONLY|O_NOCTTY) = 3
101 1000.006500 openat(AT_FDCWD, "missing.h", O_RDONLY) = -1 ENOENT (No such file or directory)
101 1000.007000 openat(AT_FDCWD, "/usr/include/stdio.h", O_RDONLY) = 3
101 1000.007500 openat(AT_FDCWD, ".", O_RDONLY|O_DIRECTORY) = 4
101 1000.008000 openat(AT_FDCWD, "a.o", O_RDWR|O_CREAT|O_TRUNC, 0666) = 4
101 1000.008500 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM) = 102
102 1000.008600 openat(AT_FDCWD, "thread.txt", O_RDONLY) = 5
102 1000.008700 +++ exited with 0 +++
101 1000.009000 renameat2(AT_FDCWD, "a.o", AT_FDCWD, "final.o", RENAME_NOREPLACE) = 0
101 1000.009500 unlink("tmp.s") = 0
101 1000.010000 +++ exited with 1 +++
100 1000.011000 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101} ---
100 1000.012000 +++ killed by SIGTERM (core dumped) +++
"""


def test_strace_parser_builds_the_tree() -> None:
    p = StraceParser("/w")
    for line in TRACE.splitlines():
        p.feed(line)
    assert p.unparsed == 0
    make, cc = p.processes[100], p.processes[101]
    assert 102 not in p.processes  # a thread is folded into its process
    assert make.argv == ["make", "-C", "sub"] and make.signal == "SIGTERM"
    assert list(make.reads) == ["/w/sub/Makefile"]
    assert cc.parent_pid == 100 and cc.exit_code == 1
    assert cc.argv == ["cc", "-c", "a b.c", "-DX=é"]
    assert cc.exec_cwd == "/w/sub"
    assert list(cc.reads) == ["/w/sub/a b.c", "/usr/include/stdio.h", "/w/sub/thread.txt"]
    assert list(cc.writes) == ["/w/sub/a.o", "/w/sub/final.o"]
    assert list(cc.deleted) == ["/w/sub/a.o", "/w/sub/tmp.s"]
    assert cc.start == pytest.approx(1000.0035) and cc.end == pytest.approx(1000.010)


def test_parse_call_keeps_truncated_strings_and_escapes() -> None:
    name, args, tail = parse_call('write(1, "a\\tb\\"c"..., 100) = 100') or ("", [], "")
    assert name == "write" and args[1] == 'a\tb"c' and tail.strip() == "= 100"


def test_policy_names_and_overrides() -> None:
    policy = SecretPolicy(
        extra_secret_names=("MY_COMPANY_*",), extra_allowed_names=("NOT_A_TOKEN",)
    )
    assert policy.name_is_secret("GITHUB_TOKEN")
    assert policy.name_is_secret("aws_secret_access_key")
    assert policy.name_is_secret("DEPLOY_KEY")
    assert policy.name_is_secret("MY_COMPANY_THING")
    assert not policy.name_is_secret("NOT_A_TOKEN")
    assert not policy.name_is_secret("PATH")
    assert not policy.name_is_secret("KEYBOARD")
    assert not policy.name_is_secret("BUILDTAPE_EVENTS")


def test_redaction_by_value_and_url() -> None:
    r = redact_environment(
        {
            "A": "AKIAABCDEFGHIJKLMNOP",
            "URL": "https://u:pw1234@h/x",
            "SHORT_TOKEN": "ab",
            "HOME": "/root",
        },
        SecretPolicy(),
    )
    assert r.env["A"] == REDACTED
    assert r.env["URL"] == f"https://u:{REDACTED}@h/x"
    assert r.env["SHORT_TOKEN"] == REDACTED and r.env["HOME"] == "/root"
    # Too short to scrub from text safely, but still redacted in the environment.
    assert sorted(r.values) == ["AKIAABCDEFGHIJKLMNOP", "pw1234"]


def test_stream_scrub_across_chunk_boundaries() -> None:
    s = Scrubber(["SECRETVALUE"])
    chunks = [b"abc SECR", b"ETVAL", b"UE def ", b"SECRETVALUE", b"!"]
    data, sizes = s.stream(b"".join(chunks), [len(c) for c in chunks])
    assert data == f"abc {REDACTED} def {REDACTED}!".encode()
    assert sum(sizes) == len(data)
    assert sizes == [4 + len(REDACTED), 0, 5, len(REDACTED), 1]


def test_tree_scrub_keeps_digests() -> None:
    s = Scrubber(["abcd"])
    out = s.tree(
        {"argv": ["x abcd y"], "sha256": "00abcd00", "nested": {"blob": "abcd"}},
        frozenset({"sha256", "blob"}),
    )
    assert out == {"argv": [f"x {REDACTED} y"], "sha256": "00abcd00", "nested": {"blob": "abcd"}}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"kind": "log", "name": "x"}', "kind must be one of"),
        ('{"kind": "metric", "name": "x", "value": NaN}', "finite number"),
        ('{"kind": "span", "name": "x", "start": 5, "end": 4}', "ends before"),
        ('{"kind": "event", "name": ""}', "non-empty"),
    ],
)
def test_invalid_event_lines(line: str, reason: str) -> None:
    ev = parse_event_line(line, 3, 1.5, 1000.0)
    assert ev.kind == "invalid_event" and ev.data["line"] == 3 and reason in ev.data["reason"]
    assert ev.t == 1.5


def test_event_timestamps_are_build_relative() -> None:
    ev = parse_event_line(
        '{"kind": "span", "name": "link", "start": 1002.0, "end": 1003.5}', 1, 9.0, 1000.0
    )
    assert (ev.kind, ev.t, ev.data["start_s"], ev.data["end_s"]) == ("span", 2.0, 2.0, 3.5)


def test_hash_cache_reuses_only_unchanged_files(tmp_path: Path) -> None:
    from recorder.hashcache import HashCache

    target = tmp_path / "tool"
    target.write_bytes(b"v1")
    cache_file = tmp_path / "cache.json"
    cache = HashCache(cache_file)
    first = cache.sha256(str(target))
    calls: list[int] = []
    assert (
        cache.version(first[0] if first else None, "tool", lambda: calls.append(1) or "tool 1.0")
        == "tool 1.0"
    )
    cache.save()
    again = HashCache(cache_file)
    assert again.sha256(str(target)) == first
    assert again.version(first[0] if first else None, "tool", lambda: "recomputed") == "tool 1.0"
    target.write_bytes(b"v2!")  # size, mtime and ctime change
    changed = again.sha256(str(target))
    assert changed is not None and first is not None and changed[0] != first[0]
    assert again.sha256(str(tmp_path / "missing")) is None
    assert calls == [1]


def test_sizes_read_the_same_in_show_and_the_report(tmp_path: Path) -> None:
    """One formatter (recorder.units.human_size) for the text commands and the HTML page."""
    from recorder.units import human_size
    from tests.conftest import buildtape

    assert [human_size(n) for n in (0, 512, 1536, 3 * 1024**2, 5 * 1024**4)] == [
        "0 B", "512 B", "1.5 KiB", "3.0 MiB", "5120.0 GiB",
    ]  # fmt: skip
    ws = tmp_path / "ws"
    ws.mkdir()
    tape = tmp_path / "sizes.tape"
    script = "head -c 1536 /dev/zero > small.bin; head -c 3145728 /dev/zero > big.bin"
    buildtape("record", "-q", "--trace", "none", "--no-store", "-o", tape, "--",
              "sh", "-c", script, cwd=ws, check=True)  # fmt: skip
    shown = buildtape("show", tape, check=True).stdout.decode()
    buildtape("report", tape, "-o", tmp_path / "r.html", check=True)
    page = (tmp_path / "r.html").read_text()
    for size in ("1.5 KiB", "3.0 MiB"):
        assert size in shown and f">{size}<" in page, size


def test_line_tail_returns_only_complete_lines_and_decodes_a_character_cut_in_two(
    tmp_path: Path,
) -> None:
    from recorder.tail import LineTail

    log = tmp_path / "log"
    tail = LineTail(log)
    assert tail.lines() == []

    def append(data: bytes) -> None:
        with open(log, "ab") as f:
            f.write(data)

    append(b"one\ntw")
    assert tail.lines() == ["one"]
    assert tail.lines() == []  # nothing new
    append(b"o\xc3")  # the first byte of "\xe9" (e acute) in UTF-8
    assert tail.lines() == []
    append(b"\xa9\n\nthree\n")
    assert tail.lines() == ["two\u00e9", "", "three"]
    append(b"\xff\tlast")  # not UTF-8, and no newline: close gives it, undamaged
    assert tail.close() == ["\udcff\tlast"]
