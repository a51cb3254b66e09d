"""Flamegraphs: golden files, the folded format, differential colouring, exports, determinism."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from flame.drawable import drawable_tree, keyed_stacks
from flame.folded import FoldedReport, folded_text, read_lines
from flame.model import StackTree
from tests.conftest import FIXTURES, buildtape, needs_strace
from tests.golden import check_golden

GOLDEN = FIXTURES / "golden" / "flame"
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (["--no-js", "--title", "Build"], "expected.svg"),
        (["--format", "folded"], "expected.folded"),
        (["-o", "-", "--format", "speedscope"], "expected.speedscope.json"),
        (["--format", "trace"], "expected.trace.json"),
        (["--no-js", "--inverted", "--order", "widest", "--colors", "blue"], "expected-icicle.svg"),
    ],
)
def test_golden_outputs(args: list[str], golden: str) -> None:
    out = buildtape("flame", GOLDEN / "basic" / "input.folded", *args, check=True)
    check_golden(out.stdout, GOLDEN / "basic" / golden)


def test_golden_differential() -> None:
    d = GOLDEN / "diff"
    out = buildtape("flame", "--no-js", "--diff", d / "base.folded", d / "new.folded", check=True)
    check_golden(out.stdout, d / "expected.svg")


def test_folded_round_trip() -> None:
    text = (GOLDEN / "basic" / "input.folded").read_text()
    tree = StackTree()
    report = read_lines(text.splitlines(), tree)
    assert report.stacks == 8 and report.malformed_count == 0
    again = StackTree()
    read_lines(folded_text(tree).splitlines(), again)
    assert folded_text(again) == folded_text(tree)
    expected = sorted(line for line in text.splitlines() if line and not line.startswith("#"))
    assert folded_text(tree).splitlines() == expected
    assert tree.total == 1030


def test_decimal_counts_and_malformed_lines_with_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "in.folded"
    src.write_text("a;b 1.5\n\nno-count-here\na;c x12\na;c -4\n;  3\na;b 2.5\n")
    tree = StackTree()
    report = read_lines(src.read_text().splitlines(), tree)
    assert tree.total == 4.0
    assert [n for n, _ in report.malformed] == [3, 4, 5, 6]
    out = buildtape("flame", src, "--format", "folded")
    assert out.returncode == 0
    assert out.stdout == b"a;b 4\n"
    warning = out.stderr.decode()
    assert "4 malformed lines skipped: line 3 (no count after the stack)" in warning
    assert "line 4 (count 'x12' is not a number)" in warning


def test_input_with_no_stacks_is_one_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "empty.folded"
    src.write_text("nonsense\n")
    out = buildtape("flame", src)
    assert out.returncode == 6
    assert out.stderr.decode().startswith(f"buildtape: error: {src} holds no folded stacks")
    missing = buildtape("flame", tmp_path / "nope.folded")
    assert missing.returncode == 4 and b"nope.folded" in missing.stderr


def _frames(svg: bytes) -> dict[str, tuple[str, str]]:
    """Leaf name -> (fill, class) from a --no-js SVG, keyed by the details title."""
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(f"{SVG_NS}g"):
        title = g.find(f"{SVG_NS}title")
        rect = g.find(f"{SVG_NS}rect")
        if title is None or rect is None or title.text is None:
            continue
        out[title.text.split(" (", 1)[0]] = (rect.get("fill", ""), g.get("class", ""), title.text)
    return out  # type: ignore[return-value]


def _is_red(fill: str) -> bool:
    m = re.fullmatch(r"#ff([0-9a-f]{2})([0-9a-f]{2})", fill)
    return bool(m) and int(m.group(1), 16) < 0xF0


def test_a_differential_has_no_single_profile_format(tmp_path: Path) -> None:
    """speedscope and Chrome trace hold one profile: --diff to them would be NEW alone,
    with no word of BASE; it is a usage error that names the formats that compare."""
    d = GOLDEN / "diff"
    for name in ("d.speedscope.json", "d.trace.json"):
        out = buildtape("flame", "--diff", d / "base.folded", d / "new.folded", "-o",
                        tmp_path / name)  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert "write the differential as .svg, .html or .folded" in out.stderr.decode()
        assert not (tmp_path / name).exists()
    for name in ("d.svg", "d.html", "d.folded"):
        buildtape("flame", "--diff", d / "base.folded", d / "new.folded", "-o", tmp_path / name,
                  check=True)  # fmt: skip


def test_differential_colours_grown_ghost_and_new() -> None:
    d = GOLDEN / "diff"
    svg = buildtape(
        "flame", "--no-js", "--diff", d / "base.folded", d / "new.folded", check=True
    ).stdout
    frames: Any = _frames(svg)
    # codegen doubled, so cc1 and gcc, whose totals include it, are grown too.
    for name in ("codegen", "cc1", "gcc"):
        assert _is_red(frames[name][0]), (name, frames[name])
    assert frames["parse"][0] == "#ffffff"  # unchanged
    fill, cls, title = frames["ld"]
    assert cls == "ghost" and fill == "url(#ghost)" and "only in base: 50" in title
    assert "(new)" in frames["as"][2] and _is_red(frames["as"][0])
    # Self mode colours only where the time itself was spent.
    svg_self = buildtape(
        "flame", "--no-js", "--diff-mode", "self", "--diff", d / "base.folded", d / "new.folded"
    ).stdout
    self_frames: Any = _frames(svg_self)
    assert _is_red(self_frames["codegen"][0])
    assert self_frames["cc1"][0] == "#ffffff" and self_frames["gcc"][0] == "#ffffff"


def test_normalize_scales_base_to_new_total(tmp_path: Path) -> None:
    base = tmp_path / "base.folded"
    new = tmp_path / "new.folded"
    base.write_text("a;b 10\na;c 10\n")
    new.write_text("a;b 20\na;c 20\n")
    plain: Any = _frames(buildtape("flame", "--no-js", "--diff", base, new).stdout)
    assert _is_red(plain["b"][0])
    normalized: Any = _frames(
        buildtape("flame", "--no-js", "--normalize", "--diff", base, new).stdout
    )
    assert normalized["b"][0] == "#ffffff" and normalized["c"][0] == "#ffffff"


@pytest.fixture(scope="module")
def speedscope_schema() -> Any:
    """speedscope's published schema, vendored from its npm package (see its NOTICE.md)."""
    path = FIXTURES / "speedscope" / "file-format-schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_speedscope_output_validates_against_the_published_schema(
    speedscope_schema: Any, tmp_path: Path
) -> None:
    import jsonschema

    out = tmp_path / "x.speedscope.json"
    buildtape("flame", GOLDEN / "basic" / "input.folded", "-o", out, check=True)
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, speedscope_schema)
    assert doc["profiles"][0]["type"] == "sampled"
    assert sum(doc["profiles"][0]["weights"]) == 1030


def _check_nesting(events: list[dict[str, Any]]) -> int:
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in events:
        if e["ph"] == "X":
            tracks.setdefault((e["pid"], e["tid"]), []).append(e)
    for track in tracks.values():
        open_ends: list[int] = []
        for e in sorted(track, key=lambda e: (e["ts"], -e["dur"])):
            while open_ends and open_ends[-1] <= e["ts"]:
                open_ends.pop()
            end = e["ts"] + e["dur"]
            assert not open_ends or end <= open_ends[-1], (
                f"{e['name']} overlaps its enclosing event"
            )
            open_ends.append(end)
    return sum(len(t) for t in tracks.values())


def test_trace_json_is_strictly_nested_per_track(tmp_path: Path) -> None:
    out = tmp_path / "x.trace.json"
    buildtape("flame", GOLDEN / "basic" / "input.folded", "-o", out, check=True)
    doc = json.loads(out.read_text())
    assert _check_nesting(doc["traceEvents"]) == 11
    assert {e["name"] for e in doc["traceEvents"] if e["ph"] == "M"} == {
        "process_name",
        "thread_name",
    }


@needs_strace
def test_tape_exports_process_stacks_and_timeline(
    fixture_copy: Any, tmp_path: Path, speedscope_schema: Any
) -> None:
    import jsonschema

    ws = fixture_copy("c-make")
    tape = tmp_path / "c.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-j2", cwd=ws, check=True)
    folded = buildtape("flame", tape, "--format", "folded", check=True).stdout.decode()
    stacks = [line.rsplit(" ", 1)[0].split(";") for line in folded.splitlines()]
    for src in ("main.c", "vec.c", "strbuf.c", "hash.c", "parse.c", "stats.c"):
        chains = [s for s in stacks if s[:2] == ["make", f"cc -c {src}"]]
        assert any(len(s) > 2 and s[2] == "cc1" for s in chains), (src, stacks)
    trace = json.loads(buildtape("flame", tape, "--format", "trace", check=True).stdout)
    assert _check_nesting(trace["traceEvents"]) >= 20
    speedscope = json.loads(buildtape("flame", tape, "--format", "speedscope", check=True).stdout)
    jsonschema.validate(speedscope, speedscope_schema)
    assert {p["type"] for p in speedscope["profiles"]} == {"sampled", "evented"}


def test_output_identical_across_hash_seeds(tmp_path: Path) -> None:
    d = GOLDEN / "diff"
    outputs = []
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = [
            buildtape("flame", GOLDEN / "basic" / "input.folded", "--format", fmt, env=env).stdout
            for fmt in ("svg", "speedscope", "trace", "folded")
        ]
        run.append(
            buildtape("flame", "--diff", d / "base.folded", d / "new.folded", env=env).stdout
        )
        outputs.append(run)
    assert outputs[0] == outputs[1] == outputs[2]
    assert all(outputs[0])


@pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed to parse the script"
)
def test_svg_script_parses(tmp_path: Path) -> None:
    svg = buildtape("flame", GOLDEN / "basic" / "input.folded", check=True).stdout.decode()
    script = re.search(r"<!\[CDATA\[\n(.*)\]\]></script>", svg, re.S)
    assert script is not None
    js = tmp_path / "flame.js"
    js.write_text(script.group(1))
    check = subprocess.run(["node", "--check", str(js)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "FLAME_FRAMES = [" in script.group(1)
    ET.fromstring(svg)  # and the whole document is well-formed XML


def test_minwidth_prunes_and_size_stays_small(tmp_path: Path) -> None:
    src = tmp_path / "big.folded"
    lines = [f"main;mod{i % 50};fn{i};leaf{i % 7} {1 + i % 13}\n" for i in range(10_000)]
    src.write_text("".join(lines))
    out = tmp_path / "big.svg"
    buildtape("flame", src, "-o", out, check=True)
    assert out.stat().st_size <= 5 * 1024 * 1024
    pruned = tmp_path / "pruned.svg"
    buildtape("flame", src, "-o", pruned, "--minwidth", "2", check=True)
    assert pruned.stat().st_size < out.stat().st_size / 2


def test_stacks_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    src = tmp_path / "deep.folded"
    deep = ";".join(f"f{i}" for i in range(5000))
    src.write_text(f"{deep} 3\n{deep};leaf 1\nmain 2\n")
    out = buildtape("flame", src, "--format", "folded", check=True).stdout.decode().splitlines()
    assert out == [f"{deep} 3", f"{deep};leaf 1", "main 2"]
    assert buildtape("flame", src, "-o", tmp_path / "deep.svg").returncode == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("min_width", [0.0, 0.1, 3.0])
@pytest.mark.parametrize("clean", [True, False])
def test_fast_path_draws_exactly_what_the_tree_draws(
    seed: int, min_width: float, clean: bool
) -> None:
    """The stream of sorted stacks (only drawable frames built) gives the same SVG as the
    full tree: unsorted input, duplicates, self weight on inner frames, names that are
    prefixes of others, shared and diverging paths, tiny and large weights."""
    import random

    from flame.options import FlameOptions
    from flame.svg import min_weight, render_svg

    rng = random.Random(seed)
    names = ["a", "a b", "ab", "b", "main", "main.c", "cc1", "x;y"[0], "é", "Z", ""]
    stacks: list[tuple[list[str], float]] = []
    for _ in range(600):
        depth = rng.randrange(1, 9)
        stack = [rng.choice(names[:3]) if d < 2 else rng.choice(names) for d in range(depth)]
        stacks.append((stack, float(rng.choice([1, 1, 2, 5, 40, 900]))))
    stacks += stacks[:50]  # duplicates merge
    options = FlameOptions(min_width=min_width, javascript=True)
    lines = [f"{';'.join(stack)} {weight:g}\n" for stack, weight in stacks]
    if not clean:  # comments, blanks and bad lines: the line-by-line parse
        lines += ["# a comment 5\n", "\n", "no-count\n", "x;y nan\n", " a;b 3\n"]
    tree = StackTree()
    tree_report = read_lines(lines, tree)
    report = FoldedReport()
    keyed = keyed_stacks("".join(lines), report)
    assert keyed is not None
    small, placed = drawable_tree(keyed, lambda t: min_weight(t, options))
    assert render_svg(small, options, placed) == render_svg(tree, options)
    assert (report.lines, report.stacks, report.malformed) == (
        tree_report.lines, tree_report.stacks, tree_report.malformed,
    )  # fmt: skip


def test_fast_path_declines_input_it_cannot_order() -> None:
    assert keyed_stacks("a\x02b;c 1\n", FoldedReport()) is None
    assert keyed_stacks("a\x01b 1\n", FoldedReport()) is None


def test_process_labels_are_one_line_without_separators() -> None:
    from flame.from_tape import label
    from recorder.model import Process

    def proc(*argv: str) -> Process:
        return Process(1, 10, None, list(argv), argv[0], "/w", 0.0, 1.0, 0, None)

    assert (
        label(proc("python3", "-c", "import os\nos.fork()\n")) == "python3 -c import os os.fork()"
    )
    assert label(proc("sh", "-c", "a; b\n  c")) == "sh -c a, b c"
    assert label(proc("python3", "build.py", "--fast")) == "python3 build.py"
    for text in (label(proc("python3", "-c", "x\ny;z")), label(proc("tool", "a\nb"))):
        assert "\n" not in text and ";" not in text
