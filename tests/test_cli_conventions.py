"""The command line's conventions, through the real CLI: every command's help teaches
(examples, exit codes), one spelling per option with the old ones still working, tapes
named by path or from the history (`last`, `last~N`, `#ID`), and the same exit code in
every command for a tape that is not there or not a tape."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from buildtape.cli import COMMANDS
from tests.conftest import REPO, buildtape, spawn_buildtape


def record(ws: Path, *argv: str, out: Path | None = None) -> None:
    """Record a build (one that fails too: record exits with the build's status)."""
    target = ["-o", str(out)] if out is not None else []
    done = buildtape("record", "-q", "--trace", "none", *target, "--", *argv, cwd=ws)
    assert done.returncode < 125 and done.stderr == b"", done.stderr


def history_rows(ws: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        buildtape("history", "--format", "json", cwd=ws, check=True).stdout
    )
    return rows


# --- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_has_examples_and_exit_codes(command: str) -> None:
    out = buildtape(command, "--help", check=True).stdout.decode()
    assert "docs/cli.md" not in out  # an installed package has no docs/
    examples = out.split("Examples:", 1)[1].split("Exit codes:", 1)[0]
    assert f"buildtape {command}" in examples
    codes = re.findall(r"^\s+(\d+)  \S", out.split("Exit codes:", 1)[1], re.M)
    assert "0" in codes and "2" in codes and "70" in codes, out
    # Old spellings stay out of the help.
    for old in ("--json", "--count", "--period"):
        assert not re.search(rf"(?<![\w-]){old}(?![\w-])", out), old


def test_the_group_help_points_at_each_commands_help() -> None:
    out = buildtape("--help", check=True).stdout.decode()
    assert "docs/cli.md" not in out and "--help lists its exit codes" in out


# --- tapes named from the history ---------------------------------------------------------


def test_last_last_n_and_id_name_tapes_of_the_history(tmp_path: Path) -> None:
    record(tmp_path, "sh", "-c", "echo first")
    record(tmp_path, "sh", "-c", "echo second; exit 3")
    rows = history_rows(tmp_path)  # newest first
    newest, older = rows[0]["tape"], rows[1]["tape"]

    def shown_tape(word: str) -> str:
        out = buildtape("show", word, "--format", "json", cwd=tmp_path, check=True)
        return str(json.loads(out.stdout)["tape"])

    assert shown_tape("last") == newest
    assert shown_tape("last~1") == older
    assert shown_tape(f"#{rows[1]['id']}") == older
    # The text of `history` gives the same ID and path a user copies.
    text = buildtape("history", cwd=tmp_path, check=True).stdout.decode().splitlines()
    assert text[2].startswith(f"#{rows[1]['id']} ")
    assert str(Path(older).relative_to(tmp_path)) in text[2]
    # Commands that take two tapes, or a tape among other inputs, take them too.
    diff = buildtape("diff", "last~1", "last", cwd=tmp_path)
    assert diff.returncode == 1 and b"exit" in diff.stdout
    flame = buildtape("flame", "last", "--format", "folded", cwd=tmp_path, check=True)
    assert b"sh -c" in flame.stdout

    for word in ("last~2", "#999"):
        out = buildtape("show", word, cwd=tmp_path)
        assert out.returncode == 4, out.stderr
        assert out.stderr.decode().splitlines() == [
            f"buildtape: error: no tape {word} in the history at {tmp_path / '.buildtape'} "
            "(it has 2 build(s)); `buildtape history` lists the tapes with their IDs"
        ]
    Path(newest).unlink()
    gone = buildtape("ps", "last", cwd=tmp_path)
    assert gone.returncode == 4 and b"gone from disk" in gone.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = buildtape("verify", "last", cwd=empty)
    assert out.returncode == 4 and b"(it is empty)" in out.stderr


def test_a_workspace_below_the_git_top_level_keeps_its_own_history(tmp_path: Path) -> None:
    """`record --workspace .` in a directory of a git repository indexes into that
    directory's history; every command run in it (or below) reads that history."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ws = tmp_path / "fixtures" / "one"
    (ws / "src").mkdir(parents=True)
    done = buildtape("record", "-q", "--trace", "none", "--workspace", ".", "--", "true", cwd=ws)
    assert done.returncode == 0, done.stderr
    for cwd in (ws, ws / "src"):
        shown = buildtape("show", "last", "--format", "json", cwd=cwd, check=True)
        assert json.loads(shown.stdout)["workspace"] == str(ws)
        assert [r["command"] for r in history_rows(cwd)] == [["true"]]
        config = buildtape("config", cwd=cwd, check=True).stdout.decode()
        assert f"history:   {ws / '.buildtape'}\n" in config
    # The rest of the repository is another workspace, whose history has no build.
    top = buildtape("show", "last", cwd=tmp_path)
    assert top.returncode == 4 and f"{tmp_path / '.buildtape'}".encode() in top.stderr


TAPE_COMMANDS = [
    ["show"],
    ["verify"],
    ["ps"],
    ["report"],
    ["flame"],
    ["events"],
    ["replay", "--yes"],
    ["extract", "--step", "1", "--into", "x"],
    ["diff", "{tape}"],
    ["export", "--format", "otlp"],
]


@pytest.mark.parametrize("args", TAPE_COMMANDS, ids=lambda a: a[0])
def test_a_directory_or_a_missing_tape_is_the_same_code_everywhere(
    args: list[str], tmp_path: Path
) -> None:
    tape = tmp_path / "t.tape"
    record(tmp_path, "true", out=tape)
    command, rest = args[0], [a.replace("{tape}", str(tape)) for a in args[1:]]
    (tmp_path / "adir").mkdir()
    for given, code, said in (
        (tmp_path / "adir", 3, "is a directory, not a tape"),
        (tmp_path / "nope.tape", 4, "no tape at"),
    ):
        out = buildtape(command, given, *rest, cwd=tmp_path)
        assert out.returncode == code, (command, out.stderr)
        lines = out.stderr.decode().splitlines()
        assert len(lines) == 1 and said in lines[0], lines


def test_flame_of_a_file_that_is_not_a_tape_prints_no_bytes_of_it(tmp_path: Path) -> None:
    binary = tmp_path / "x.tape"
    binary.write_bytes(b"\x7fELF\x02\x01\x00\x00 some; stack 3\n\x1b[31m red 1\n" * 50)
    out = buildtape("flame", binary, cwd=tmp_path)
    assert out.returncode == 3 and out.stdout == b""
    assert b"\x1b" not in out.stderr and b"\x00" not in out.stderr
    renamed = tmp_path / "x.bin"
    shutil.copy(binary, renamed)
    out = buildtape("flame", renamed, cwd=tmp_path)
    assert out.returncode == 6 and out.stdout == b""
    assert out.stderr.decode().splitlines() == [
        f"buildtape: error: {renamed} is a binary file: neither a tape nor folded stacks "
        "(frame;frame COUNT)"
    ]


# --- one spelling per option, the old ones still working ----------------------------------


def test_old_spellings_still_work_as_hidden_aliases(tmp_path: Path) -> None:
    for i in range(3):
        record(tmp_path, "sh", "-c", f"echo {i}")
    new = buildtape("history", "--format", "json", cwd=tmp_path, check=True).stdout
    assert buildtape("history", "--json", cwd=tmp_path, check=True).stdout == new
    assert len(json.loads(new)) == 3
    two = buildtape("history", "--limit", "2", "--format", "json", cwd=tmp_path, check=True)
    assert len(json.loads(two.stdout)) == 2
    for old in ("--count", "--last"):
        got = buildtape("history", old, "2", "--format", "json", cwd=tmp_path, check=True)
        assert got.stdout == two.stdout
    one = buildtape("events", "--limit", "1", "--format", "json", cwd=tmp_path, check=True)
    old = buildtape("events", "--count", "1", "--json", cwd=tmp_path, check=True)
    assert old.stdout == one.stdout and len(json.loads(one.stdout)) == 1
    since = json.loads(buildtape("stats", "--since", "1d", "--json", cwd=tmp_path).stdout)
    period = json.loads(buildtape("stats", "--period", "day", "--json", cwd=tmp_path).stdout)
    assert since["builds"] == period["builds"] == 3
    assert since["period"] == "since" and period["period"] == "day"
    assert json.loads(buildtape("show", "last", "--json", cwd=tmp_path).stdout)["tape"]
    assert buildtape("config", "--json", cwd=tmp_path, check=True).stdout.startswith(b"{")


def test_extract_writes_into_a_directory_and_o_is_its_old_spelling(tmp_path: Path) -> None:
    tape = tmp_path / "t.tape"
    buildtape("record", "-q", "-o", tape, "--", "sh", "-c", "echo hi > out.txt", cwd=tmp_path,
              check=True)  # fmt: skip
    buildtape("extract", tape, "--step", "1", "--into", tmp_path / "new", check=True)
    buildtape("extract", tape, "--step", "1", "-o", tmp_path / "old", check=True)
    assert (tmp_path / "new" / "run.sh").read_bytes() == (tmp_path / "old" / "run.sh").read_bytes()
    out = buildtape("extract", tape, "--step", "1")
    assert out.returncode == 2 and b"--into DIR" in out.stderr


def test_o_is_always_a_file(tmp_path: Path) -> None:
    tape = tmp_path / "t.tape"
    record(tmp_path, "true", out=tape)
    for args in (["report", tape], ["flame", tape], ["diff", tape, tape]):
        out = buildtape(*args, "-o", tmp_path, cwd=tmp_path)
        assert out.returncode == 2 and b"is a directory; -o/--output names a file" in out.stderr


# --- success paths say what they did, surprising ones refuse ------------------------------


def test_files_written_are_named_and_unknown_extensions_refused(tmp_path: Path) -> None:
    tape = tmp_path / "t.tape"
    record(tmp_path, "sh", "-c", "true", out=tape)
    for args, target in (
        (["flame", tape, "-o", "f.svg"], "f.svg"),
        (["diff", tape, tape, "--format", "html", "-o", "d.html"], "d.html"),
        (["report", tape, "-o", "r.html"], "r.html"),
        (["export", "--format", "csv", "-o", "b.csv"], "b.csv"),
    ):
        out = buildtape(*args, cwd=tmp_path, check=True)
        assert (tmp_path / target).stat().st_size > 0
        assert re.fullmatch(rf"buildtape: wrote {target} \(.+\)\n", out.stderr.decode())
    png = buildtape("flame", tape, "-o", "x.png", cwd=tmp_path)
    assert png.returncode == 2 and not (tmp_path / "x.png").exists()
    assert b"cannot tell the format from the name x.png: end it with one of .svg" in png.stderr
    # --format says it whatever the name: the file is what was asked for.
    buildtape("flame", tape, "--format", "svg", "-o", "x.png", cwd=tmp_path, check=True)
    assert (tmp_path / "x.png").read_bytes().startswith(b"<?xml")


def test_record_never_overwrites_a_file_that_is_not_a_tape(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    marker = tmp_path / "ran"
    out = buildtape("record", "-o", precious, "--", "touch", marker, cwd=tmp_path)
    assert out.returncode == 2 and b"precious.txt exists and is not a tape" in out.stderr
    assert precious.read_text() == "mine\n" and not marker.exists()  # nothing ran
    tape = tmp_path / "t.tape"
    record(tmp_path, "true", out=tape)
    record(tmp_path, "touch", str(marker), out=tape)  # an older tape is replaced
    assert marker.exists()


def test_check_fails_on_a_history_that_is_not_there(tmp_path: Path) -> None:
    out = buildtape("check", "--home", tmp_path / "nonexistent", cwd=tmp_path)
    assert out.returncode == 4
    assert b"no history at" in out.stderr and b"check --home" in out.stderr
    out = buildtape("check", cwd=tmp_path)  # the default history, never written
    assert out.returncode == 4 and b"no builds in the history" in out.stderr
    record(tmp_path, "true")
    out = buildtape("check", cwd=tmp_path)
    assert out.returncode == 0 and b"check passed" in out.stdout
    out = buildtape("stats", "--home", tmp_path / "typo", cwd=tmp_path)
    assert out.returncode == 4


def test_otlp_export_says_where_it_connects_and_takes_a_timeout(
    tmp_path: Path, refused_endpoint: str
) -> None:
    tape = tmp_path / "t.tape"
    record(tmp_path, "true", out=tape)
    out = buildtape("export", "--format", "otlp", "--endpoint", refused_endpoint,
                    "--timeout", "0.5", tape, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 5
    first = out.stderr.decode().splitlines()[0]
    assert first == (
        f"buildtape: sending 1 trace(s) to {refused_endpoint} (timeout 0.5s, --timeout to change)"
    )


def test_vary_labels_each_run_it_streams(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    tape = tmp_path / "v.tape"
    buildtape("record", "-q", "-o", tape, "--", "sh", "-c", "echo built; date +%Z > z.txt",
              cwd=ws, check=True)  # fmt: skip
    out = buildtape("replay", tape, "--vary", "tz", cwd=ws)
    assert out.returncode == 1, out.stderr
    banners = [ln for ln in out.stderr.decode().splitlines() if ln.startswith("[run ")]
    assert [b.split(": ")[0] for b in banners] == [
        "[run 1] replay",
        "[run 2] replay",
        "[run 3] replay",
    ]
    assert "control 1" in banners[0] and "control 2" in banners[1] and "varied tz" in banners[2]


# --- gc leaves the user's tapes alone -----------------------------------------------------


def test_gc_never_deletes_a_tape_named_with_o(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    named = [project / "good.tape", project / "fail.tape"]
    record(project, "true", out=named[0])
    record(project, "sh", "-c", "exit 1", out=named[1])
    for _ in range(3):
        record(project, "true")
    own = sorted((project / ".buildtape" / "tapes").glob("*.tape"))
    assert len(own) == 3
    dry = buildtape("gc", "--keep-last", "1", "--dry-run", cwd=project, check=True).stdout
    assert b"would delete" in dry and b"good.tape" in dry  # said, as forgotten, not deleted
    assert all(b"would delete " + str(n).encode() not in dry for n in named)
    plan = json.loads(buildtape("gc", "--keep-last", "1", "--format", "json", cwd=project,
                                check=True).stdout)  # fmt: skip
    assert sorted(plan["forget"]) == sorted(map(str, named))
    assert sorted(plan["delete"]) == [str(p) for p in own[:2]]
    assert all(n.exists() for n in named)  # the user's files stay
    assert [p.exists() for p in own] == [False, False, True]
    assert [r["tape"] for r in history_rows(project)] == [str(own[2])]


# --- the README's quick start records a tape that replays ---------------------------------


def _quick_start() -> list[str]:
    """The quick start's code blocks: exactly two, one command each."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```sh\n")[1:]]
    assert len(blocks) == 2, blocks
    # One command each: a line that ends in && goes on.
    for block in blocks:
        lines = block.strip().splitlines()
        assert all(line.rstrip().endswith("&&") for line in lines[:-1]), block
    return [" ".join(line.strip() for line in b.strip().splitlines()) for b in blocks]


def test_the_readme_quick_start_records_a_tape_that_replays(tmp_path: Path) -> None:
    run, tests = _quick_start()
    assert tests == "pip install -e '.[test]' && python3 -m pytest -q", tests
    assert "\npython3 -m pytest -q\n" in (REPO / ".ci" / "run").read_text()
    install = "pip install -e . && "
    assert run.startswith(install), run  # installing is not tested here
    # A clone: the fixture below the git top level, which is the workspace (and the
    # history's home) of a recording started in it.
    shutil.copytree(REPO / "fixtures" / "c-make", tmp_path / "fixtures" / "c-make",
                    ignore=shutil.ignore_patterns("*.o", "app", "*.tape", ".buildtape"))  # fmt: skip
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], check=True)
    # `buildtape` is this checkout's CLI, as `pip install -e .` makes it.
    shim = tmp_path / "bin" / "buildtape"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m buildtape "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}
    env.pop("BUILDTAPE_HOME", None)
    script = "set -e\n" + run[len(install) :] + "\n"
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    text = out.stdout.decode() + out.stderr.decode()
    assert out.returncode == 0, text
    assert "status    succeeded (exit 0)" in text, text  # show last: the tape just recorded
    assert "reproduced:" in text and "the whole build" in text, text
    assert (tmp_path / "fixtures" / "c-make" / "c-make.tape").is_file()
    # The quick start as it was (recording from outside the workspace) is refused, with the fix.
    old = subprocess.run(
        [sys.executable, "-m", "buildtape", "record", "--workspace", "fixtures/c-make", "-o",
         "c.tape", "--", "make", "-C", "fixtures/c-make"],
        cwd=tmp_path, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert old.returncode == 2 and not (tmp_path / "c.tape").exists()
    assert b"is outside the workspace" in old.stderr and b"cd fixtures/c-make" in old.stderr


# --- show and ps: one line per argv, failed steps and the tree -----------------------------


def test_show_and_ps_keep_multi_line_argv_on_one_line(tmp_path: Path) -> None:
    tape = tmp_path / "t.tape"
    script = "echo one\nsh -c 'exit 4'\necho done"
    buildtape("record", "-q", "-o", tape, "--", "sh", "-c", script, cwd=tmp_path)
    shown = buildtape("show", tape, check=True).stdout.decode()
    assert "  command   sh -c $'echo one\\nsh -c \\'exit 4\\'\\necho done'\n" in shown
    assert "stacks" not in shown  # no Python ran: no line about zero samples
    ps = buildtape("ps", tape, check=True).stdout.decode().splitlines()
    assert len(ps) == 3 and ps[1].endswith("sh -c $'echo one\\nsh -c \\'exit 4\\'\\necho done'")
    # The quoted form is what a shell reads back.
    quoted = ps[1].split("  ")[-1]
    echoed = subprocess.run(["bash", "-c", f"printf '%s\\n' {quoted}"], capture_output=True)
    assert echoed.stdout.decode() == f"sh\n-c\n{script}\n"


def test_ps_failed_and_tree(tmp_path: Path, fixture_copy: Callable[..., Path]) -> None:
    ws = fixture_copy("c-make-failing")
    tape = tmp_path / "f.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-k", cwd=ws)
    procs = json.loads(buildtape("ps", tape, "--format", "json", check=True).stdout)
    failed = [p for p in procs if p["exit_code"] not in (0, None) or p["signal"]]
    assert failed
    only = buildtape("ps", tape, "--failed", check=True).stdout.decode().splitlines()[1:]
    assert [int(line.split()[0]) for line in only] == [p["id"] for p in failed]
    tree = buildtape("ps", tape, "--tree", check=True).stdout.decode().splitlines()[1:]
    assert len(tree) == len(procs)
    by_id = {p["id"]: p for p in procs}

    def depth(p: dict[str, Any]) -> int:
        return 0 if p["parent_id"] not in by_id else 1 + depth(by_id[p["parent_id"]])

    for line in tree:
        p = by_id[int(line.split()[0])]
        # Under a parent: "├─ " or "└─ " after one 3-character column per ancestor above it.
        branch = re.search(r"  ((?:│  |   )*)[├└]─ ", line)
        if depth(p) == 0:
            assert branch is None, line
        else:
            assert branch is not None and len(branch.group(1)) == 3 * (depth(p) - 1), line
    both = buildtape("ps", tape, "--failed", "--tree", check=True).stdout.decode()
    assert all(f" {p['id']} " in both for p in failed)
    assert "└─ " in both or "├─ " in both


# --- colour: buildtape's own words on a terminal, never on a pipe or with NO_COLOR ---------


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "buildtape", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks)


def test_colour_on_a_terminal_only_and_never_with_no_color(tmp_path: Path) -> None:
    tape = tmp_path / "t.tape"
    # The build prints a colour of its own: on a terminal it is kept, as SGR that buildtape
    # writes from the parsed style (recorder/ansi.py), never the tape's bytes.
    buildtape("record", "-q", "--trace", "none", "-o", tape, "--", "sh", "-c",
              "printf '\\033[31mred\\n' >&2; exit 2", cwd=tmp_path)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    code, shown = _on_a_terminal(["show", str(tape)], tmp_path, {**env, "TERM": "xterm"})
    assert code == 0
    assert b"  status    \x1b[31m\x1b[1mfailed\x1b[0m (exit 2)" in shown
    assert b"\x1b[1mFailing steps\x1b[0m" in shown
    assert b"\x1b[31mred" not in shown and b"| \x1b[0;31mred\x1b[0m" in shown
    code, listed = _on_a_terminal(["history"], tmp_path, {**env, "TERM": "xterm"})
    assert b" \x1b[31m\x1b[1mfailed\x1b[0m " in listed
    code, err = _on_a_terminal(["show", str(tmp_path / "nope.tape")], tmp_path, env)
    assert code == 4 and err.startswith(b"buildtape: \x1b[31m\x1b[1merror\x1b[0m: no tape at")
    for no_colour in ({**env, "NO_COLOR": "1", "TERM": "xterm"}, {**env, "TERM": "dumb"}):
        code, plain = _on_a_terminal(["show", str(tape)], tmp_path, no_colour)
        assert code == 0 and b"\x1b" not in plain and b"  status    failed (exit 2)" in plain
    piped = buildtape("show", tape, env={**env, "TERM": "xterm"}, check=True)
    assert b"\x1b" not in piped.stdout


# --- Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_during_a_replay_is_an_interruption_not_a_refusal(tmp_path: Path) -> None:
    """click turns a KeyboardInterrupt inside a command into its Abort: it must still be
    exit 130 and say it was interrupted, not `aborted; nothing was run` (exit 8)."""
    tape = tmp_path / "slow.tape"
    record(tmp_path, "sh", "-c", "echo ready; sleep 2", out=tape)
    proc = spawn_buildtape("replay", tape, "--yes", "--workdir", tmp_path / "sandbox",
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.decode().splitlines()[-1] == (
        "buildtape: interrupted; run the command again to finish it"
    )
    assert b"Traceback" not in err and b"nothing was run" not in err


def test_start_up_holds_the_collector_off_until_the_command_has_loaded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console script turns the garbage collector off for the start-up imports and on
    again once the command is loaded, so commands run with it as usual."""
    import gc

    import buildtape.__main__ as entry
    import buildtape.cli as cli

    states: list[bool] = []
    real = cli.LazyGroup.get_command

    def watched(self: cli.LazyGroup, ctx: click.Context, name: str) -> click.Command | None:
        states.append(gc.isenabled())
        command = real(self, ctx, name)
        states.append(gc.isenabled())
        return command

    monkeypatch.setattr(cli.LazyGroup, "get_command", watched)
    monkeypatch.setattr(sys, "argv", ["buildtape", "show", "--help"])
    try:
        with pytest.raises(SystemExit) as exited:
            entry.main()
    finally:
        gc.enable()
    assert exited.value.code == 0
    assert "Usage:" in capsys.readouterr().out
    assert states[:2] == [False, True]
