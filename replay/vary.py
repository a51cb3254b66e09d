"""``replay --vary``: which outputs change when the build's circumstances do (like
reprotest, without root), and ``--bisect``: which single variation is responsible.

Every run is a replay in its own sandbox. Two *control* runs come first: outputs that
differ between them are nondeterministic on their own (randomness, the clock at
sub-second resolution) and are reported apart, not blamed on a variation. Then one run
with every asked variation; if some output differs from the control, ``--bisect``
halves the set until one variation is left: at most ``ceil(log2 k) + 1`` varied runs.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recorder.tape import Tape
from replay.errors import RunError, SandboxError, VaryError
from replay.replay import compare_outputs, make_sandbox, replay_env
from replay.run import Run, RunStart, run_in_sandbox
from replay.sandbox import choose_isolation
from replay.verdict import is_bookkeeping

# name -> (what the control run uses, what the varied run uses), documented in docs/replay.md
VARIATIONS: dict[str, tuple[str, str]] = {
    "time": ("now", "at least 1.1 s later, SOURCE_DATE_EPOCH unset vs set"),
    "tz": ("TZ=UTC", "TZ=Pacific/Chatham (UTC+12:45)"),
    "locale": ("LC_ALL=C.UTF-8", "LC_ALL=C"),
    "umask": ("the recorded umask", "umask 0002"),
    "path": ("the recorded path", "/tmp/buildtape-varied-with-a/much/longer/path/<name>"),
    "env-order": ("the recorded order", "reversed"),
    "jobs": ("MAKEFLAGS=-j1", "MAKEFLAGS=-j2"),
}


@dataclass(frozen=True)
class VaryOptions:
    variations: tuple[str, ...]
    bisect: bool = False
    step: int | None = None
    keep: bool = False
    workdir: Path | None = None
    # auto | bwrap | directory, as for replay.
    sandbox: str = "auto"
    tape_name: str = ""
    build_output_to_stderr: bool = False


@dataclass
class VaryResult:
    variations: tuple[str, ...]
    # Outputs that differ between the two control runs: nondeterministic without variation.
    noisy: list[str]
    # Outputs that differ between the control and the run with every variation.
    unreproducible: list[str]
    responsible: str | None
    # (variations applied, outputs that differed from the control) for every varied run.
    runs: list[tuple[tuple[str, ...], list[str]]] = field(default_factory=list)
    sandbox: Path | None = None


def parse_variations(text: str) -> tuple[str, ...]:
    names = tuple(sorted({v.strip() for v in text.split(",") if v.strip()}))
    unknown = [n for n in names if n not in VARIATIONS]
    if unknown or not names:
        raise VaryError(
            f"unknown variation {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(VARIATIONS)}"
        )
    return names


def _env(base: Mapping[str, str], applied: set[str]) -> dict[str, str]:
    env = dict(base)
    env["TZ"] = "Pacific/Chatham" if "tz" in applied else "UTC"
    env["LC_ALL"] = "C" if "locale" in applied else "C.UTF-8"
    env["MAKEFLAGS"] = "-j2" if "jobs" in applied else "-j1"
    if "time" in applied:
        env["SOURCE_DATE_EPOCH"] = str(int(time.time()))
    else:
        env.pop("SOURCE_DATE_EPOCH", None)
    if "env-order" in applied:
        env = dict(reversed(list(env.items())))
    return env


def vary(
    tape: Tape,
    options: VaryOptions,
    current_env: Mapping[str, str],
    notify: Callable[[str], None] = lambda _: None,
    started: Callable[[RunStart], None] = lambda _: None,
) -> VaryResult:
    m = tape.manifest
    base, _ = replay_env(m, current_env)
    try:
        isolation = choose_isolation(options.sandbox, current_env)
    except SandboxError as exc:
        raise VaryError(str(exc)) from exc
    root, temp = make_sandbox(options.workdir, "buildtape-vary-")
    controls = 0

    def run(applied: set[str]) -> Run:
        # Every run without the path variation sees the very same workspace path (the
        # recorded one in a bwrap sandbox), so the path varies only when asked; runs are
        # sequential and keep their outputs in memory.
        nonlocal controls
        place = None
        if "path" in applied:
            sandbox = root / "varied-with-a" / "much" / "longer" / "path"
            name = m.workspace.rstrip("/").rsplit("/", 1)[-1] or "workspace"
            place = f"/tmp/buildtape-varied-with-a/much/longer/path/{name}"
        else:
            sandbox = root / "control"
        shutil.rmtree(sandbox, ignore_errors=True)
        umask = "0002" if "umask" in applied else m.environment.umask
        if applied:
            label = "varied " + ",".join(sorted(applied))
        else:
            controls += 1
            label = f"control {controls}"
        try:
            return run_in_sandbox(
                tape, sandbox, _env(base, applied), options.step, umask, notify=notify,
                isolation=isolation, place=place, started=started, variation=label,
                tape_name=options.tape_name,
                build_stdout=2 if options.build_output_to_stderr else 1,
            )  # fmt: skip
        except RunError as exc:
            raise VaryError(str(exc)) from exc

    def differing(a: Run, b: Run) -> list[str]:
        return sorted(
            c.path for c in compare_outputs(a.outputs, b.outputs, only_expected=False)
            if c.status != "same" and not is_bookkeeping(c.path)
        )  # fmt: skip

    try:
        began = time.monotonic()
        control = run(set())
        noisy = set(differing(control, run(set())))
        if "time" in options.variations:
            time.sleep(max(0.0, 1.1 - (time.monotonic() - began)))

        def varied(names: tuple[str, ...]) -> list[str]:
            diffs = [p for p in differing(control, run(set(names))) if p not in noisy]
            result.runs.append((names, diffs))
            return diffs

        result = VaryResult(options.variations, sorted(noisy), [], None, sandbox=root)
        result.unreproducible = varied(options.variations)
        if options.bisect and result.unreproducible:
            candidates = list(options.variations)
            while len(candidates) > 1:
                half = tuple(candidates[: len(candidates) // 2])
                candidates = list(half) if varied(half) else candidates[len(candidates) // 2 :]
            result.responsible = candidates[0]
            assert len(result.runs) <= math.ceil(math.log2(len(options.variations))) + 1
        return result
    finally:
        if temp and not options.keep:
            shutil.rmtree(root, ignore_errors=True)
