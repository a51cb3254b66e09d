"""``extract``: a standalone reproducer for one recorded step.

The directory holds:

- ``workspace/``: the step's world as it was when it started (``replay.world``): the files
  its subtree read or executed, with their recorded modes and mtimes, and the directories
  it writes into;
- ``tmp/``: intermediates outside the workspace that earlier steps wrote for it (gcc's
  ``/tmp/cc*.s`` for an ``as`` step);
- ``run.sh``: runs the step with the exact cwd, environment (``env -i``: nothing of the
  receiver's environment leaks in) and argv, says the recorded exit status, exits with the
  step's own status, and compares the outputs with ``expected.sha256``. When the step
  needs its recorded path (its argv names it, its outputs embed it, or it reads an
  intermediate under /tmp) and ``bwrap`` works, it runs there, in a sandbox; otherwise in
  ``workspace/``, saying what will differ. ``BUILDTAPE_RUN_AT=recorded|here`` chooses;
- ``expected.sha256``: the step's recorded outputs, for ``sha256sum -c``.

Every value that reaches ``run.sh`` goes through ``sh_quote``; the umask must be octal.
Running it needs only ``sh`` (and ``bwrap`` for the recorded path): no buildtape.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recorder.model import REDACTED, FileEntry, Manifest, Process
from recorder.tape import Tape
from replay.errors import ExtractError, WorldError
from replay.restore import restore_intermediates
from replay.run import names_workspace, prepare
from replay.world import World, step_world, subtree

__all__ = ["ExtractError", "ExtractOptions", "Extracted", "extract", "sh_quote", "subtree"]

_UMASK = re.compile(r"0?[0-7]{3}")


@dataclass(frozen=True)
class ExtractOptions:
    step: int
    out_dir: Path


@dataclass
class Extracted:
    out_dir: Path
    step: Process
    files: int
    outputs: list[FileEntry]
    missing: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)
    # Why the step should run at its recorded path (empty: it need not).
    needs_path: list[str] = field(default_factory=list)
    intermediates: list[str] = field(default_factory=list)
    recorded_status: int = 0


def sh_quote(value: str) -> str:
    """``value`` as one single-quoted shell word; the only way a value enters ``run.sh``."""
    if "\0" in value:
        raise ExtractError(f"a value for run.sh contains a NUL byte: {value[:60]!r}")
    return "'" + value.replace("'", "'\\''") + "'"


def _umask(text: str) -> str:
    if not _UMASK.fullmatch(text):
        raise ExtractError(f"the recorded umask {text!r} is not an octal mask; refusing")
    return text


def expected_sha256(outputs: list[FileEntry]) -> str:
    """``sha256sum -c`` lines for the recorded outputs; a path with a newline is refused."""
    lines = []
    for e in outputs:
        if "\n" in e.path or "\r" in e.path:
            raise ExtractError(f"output {e.path!r} has a newline in its name; refusing")
        if e.sha256 is None or not re.fullmatch(r"[0-9a-f]{64}", e.sha256):
            raise ExtractError(f"output {e.path!r} has no valid recorded sha256")
        lines.append(f"{e.sha256}  workspace/{e.path}\n")
    return "".join(lines)


def _needs_path(tape: Tape, m: Manifest, world: World) -> list[str]:
    reasons = []
    arg = names_workspace(m, world)
    if arg is not None:
        reasons.append(f"its arguments name {m.workspace}")
    embedded = []
    needle = m.workspace.encode()
    for e in world.expected:
        if e.blob is not None and e.size < 64 * 1024 * 1024 and needle in tape.blob(e.blob):
            embedded.append(e.path)
    if embedded:
        reasons.append(f"its outputs embed {m.workspace}: {', '.join(embedded)}")
    if world.intermediates:
        reasons.append(f"it reads {', '.join(i.path for i in world.intermediates)}")
    return reasons


def _comment(text: str) -> str:
    """``text`` safe inside a ``#`` comment: one line, printable characters only."""
    return "".join(c if c.isprintable() else "?" for c in text)


def run_script(
    m: Manifest, world: World, needs_path: list[str], intermediates: list[str]
) -> tuple[str, list[str]]:
    """The shell script that re-runs the step, and the redacted variables it leaves unset."""
    step = world.step
    assert step is not None
    q = sh_quote
    kept = {k: v for k, v in sorted(world.env.items()) if v != REDACTED and REDACTED not in v}
    redacted = sorted(k for k in world.env if k not in kept)
    shown = " ".join(world.argv)[:200].replace("\n", " ")
    tmp_names = [p[len("/tmp/") :] for p in intermediates]
    command = " \\\n    ".join(["env -i", *(q(f"{k}={v}") for k, v in kept.items())])
    command += " \\\n    " + " ".join(q(a) for a in world.argv)
    lines = [
        "#!/bin/sh",
        f"# Re-runs step {step.id} of a buildtape recording:",
        "#   " + _comment(shown),
        f"# Recorded exit status: {world.expected_status}. This script exits with the step's",
        "# status and compares its outputs with expected.sha256 (sha256sum -c expected.sha256).",
        "# BUILDTAPE_RUN_AT=recorded runs it at the recorded path in a bwrap sandbox,",
        "# BUILDTAPE_RUN_AT=here in ./workspace; by default: recorded when the step needs its",
        "# path and bwrap works here.",
        "set -u",
        'here=$(cd "$(dirname "$0")" && pwd)',
        f"recorded_ws={q(m.workspace)}",
        f"rel_cwd={q(world.cwd)}",
        f"recorded_status={world.expected_status}",
        f"needs_path={q('; '.join(needs_path))}",
        f"names_path={1 if names_workspace(m, world) else 0}",
        f"umask {_umask(m.environment.umask)}",
    ]
    if redacted:
        names = " ".join(redacted)
        lines.append(f"# Redacted in the tape, so not set here: {_comment(names)}")
    for path, later in world.rewritten_later:
        lines.append(f"# Not in expected.sha256: {_comment(path)} (step {later} changed it "
                     "later; the tape holds only its final content)")  # fmt: skip
    for path in world.stale:
        lines.append(f"# {_comment(path)} is as the build left it, not as this step found it "
                     "(changed again after an earlier step wrote it)")  # fmt: skip
    lines += [
        "",
        'run_step() {  # "$@": what to run the step in (nothing, or bwrap and its mounts)',
        f'    "$@" {command}',
        "}",
        "",
        "place_tmp() {  # intermediates earlier steps left in /tmp, when not in a sandbox",
        *(f"    place_one {q(n)} || return 1" for n in tmp_names),
        "    :",
        "}",
        "",
        "clear_tmp() {",
        *(f"    rm -f /tmp/{q(n)}" for n in tmp_names),
        "    :",
        "}",
        _BODY,
    ]
    return "\n".join(lines) + "\n", redacted


_BODY = r"""
place_one() {
    if [ -e "/tmp/$1" ]; then
        echo "run.sh: /tmp/$1 exists already; not overwriting it" >&2
        return 1
    fi
    mkdir -p "$(dirname "/tmp/$1")" && cp "$here/tmp/$1" "/tmp/$1"
}

bwrap_works() {
    command -v bwrap >/dev/null 2>&1 && bwrap --unshare-user --ro-bind / / true 2>/dev/null
}

mode=${BUILDTAPE_RUN_AT:-}
if [ -z "$mode" ]; then
    if [ -n "$needs_path" ] && bwrap_works; then mode=recorded; else mode=here; fi
fi

if [ "$mode" = recorded ]; then
    bwrap_works || { echo "run.sh: bwrap cannot create namespaces here" >&2; exit 125; }
    echo "run.sh: running at the recorded path $recorded_ws in a bwrap sandbox" >&2
    mkdir -p "$here/tmp"
    set -- bwrap --unshare-user --unshare-pid --die-with-parent
    top=
    case "$recorded_ws" in
        /tmp/*) ;;
        *) if [ ! -d "$recorded_ws" ]; then
               top=$(dirname "$recorded_ws")
               while [ ! -d "$top" ]; do top=$(dirname "$top"); done
           fi ;;
    esac
    # A recorded path that does not exist here is made inside the sandbox only: its
    # nearest existing parent becomes a tmpfs that re-binds that parent's entries.
    if [ "$top" = / ]; then
        for entry in /* /.[!.]*; do
            case "$entry" in /proc|/dev|/tmp|'/.[!.]*') continue ;; esac
            if [ -L "$entry" ]; then set -- "$@" --symlink "$(readlink "$entry")" "$entry"
            elif [ -e "$entry" ]; then set -- "$@" --ro-bind "$entry" "$entry"; fi
        done
    else
        set -- "$@" --ro-bind / /
    fi
    set -- "$@" --dev /dev --proc /proc --bind "$here/tmp" /tmp
    if [ -n "$top" ] && [ "$top" != / ]; then
        set -- "$@" --tmpfs "$top"
        for entry in "$top"/* "$top"/.[!.]*; do
            if [ -L "$entry" ]; then set -- "$@" --symlink "$(readlink "$entry")" "$entry"
            elif [ -e "$entry" ]; then set -- "$@" --ro-bind "$entry" "$entry"; fi
        done
    fi
    set -- "$@" --bind "$here/workspace" "$recorded_ws" --chdir "$recorded_ws/$rel_cwd" --
    run_step "$@"
    status=$?
else
    if [ "$names_path" = 1 ]; then
        echo "run.sh: the step names $recorded_ws in its arguments, so it can only run at that" >&2
        echo "run.sh: path: install bubblewrap (bwrap) and run with BUILDTAPE_RUN_AT=recorded" >&2
        exit 125
    fi
    if [ -n "$needs_path" ]; then
        echo "run.sh: running in ./workspace, not at $recorded_ws; $needs_path, so those" >&2
        echo "run.sh: outputs will differ from expected.sha256 (bwrap runs it at its path)" >&2
    fi
    place_tmp || exit 125
    cd "$here/workspace/$rel_cwd" || exit 125
    run_step
    status=$?
    clear_tmp
fi

if [ "$status" = "$recorded_status" ]; then
    echo "run.sh: exit $status, as recorded" >&2
else
    echo "run.sh: exit $status; the recording exited $recorded_status" >&2
fi
cd "$here" || exit 125
if [ -s expected.sha256 ]; then
    if sha256sum -c --quiet expected.sha256 >&2; then
        echo "run.sh: outputs as recorded" >&2
    else
        echo "run.sh: outputs differ from the recording (see above)" >&2
    fi
else
    echo "run.sh: the step wrote no outputs in the recording; only its exit status compares" >&2
fi
exit "$status"
"""


def extract(tape: Tape, options: ExtractOptions) -> Extracted:
    m = tape.manifest
    out_dir = options.out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExtractError(f"{out_dir} is not empty; choose a new directory with -o")
    try:
        world = step_world(m, options.step)
    except WorldError as exc:
        raise ExtractError(str(exc)) from exc
    assert world.step is not None
    if world.cwd_outside():
        raise ExtractError(
            f"step {world.step.id} ran in {_comment(world.cwd)}, outside the workspace; a "
            "reproducer holds only the workspace: replay it with `buildtape replay --step`"
        )
    expected = expected_sha256(world.expected)
    unplaced = [i.path for i in world.intermediates if not i.path.startswith("/tmp/")]
    if unplaced:
        raise ExtractError(f"step {world.step.id} reads {unplaced[0]}, outside the workspace "
                           "and /tmp; a reproducer cannot put it back")  # fmt: skip
    needs = _needs_path(tape, m, world)
    inters = [i.path for i in world.intermediates if i.blob is not None]
    script, redacted = run_script(m, world, needs, inters)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        missing = prepare(tape, world, out_dir)
        (out_dir / "tmp").mkdir(exist_ok=True)
        missing += restore_intermediates(tape, world.intermediates, out_dir / "tmp")
        run_sh = out_dir / "run.sh"
        run_sh.write_text(script)
        run_sh.chmod(0o755)
        (out_dir / "expected.sha256").write_text(expected)
    except BaseException:
        # Half a reproducer would pass for one (a full disk, ^C): the directory is left
        # as it was, absent or empty (it was checked empty above).
        _empty(out_dir, remove=created)
        raise
    return Extracted(
        out_dir, world.step, len(world.files), world.expected, missing, redacted, needs, inters,
        world.expected_status,
    )  # fmt: skip


def _empty(directory: Path, remove: bool) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    if remove:
        directory.rmdir()
