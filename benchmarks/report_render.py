"""How big the HTML report of a large build is, and how fast Chromium first renders it.

A synthetic tape: a real recording of ``fixtures/c-make`` whose process table is replaced by
5,000 processes (a top make, 50 sub-makes, compiles with cc1 and as under them, ~12 files
read each) and whose Python samples are 100,000 distinct stacks (depth 4-24 over 3,000
function names) in 20 Python processes. Then ``buildtape report`` on it: the file's size,
and the first render in headless Chromium (Debian's, via Playwright): from navigation to
the first frame painted after the page's script has drawn the timeline and the
flamegraph. The baseline, in the same run, is the same measurement for the report of the
small real tape (22 processes). Goal: <= 10 MB, first render <= 2 s.

    python benchmarks/report_render.py [--processes 5000] [--stacks 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recorder.container import TapeReader, TapeWriter  # noqa: E402
from recorder.model import Manifest, Process, Sampling  # noqa: E402
from recorder.tape import open_tape  # noqa: E402

LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


def processes(n: int, duration: float, rng: random.Random) -> list[Process]:
    out = [Process(0, 1000, None, ["make", "-j8"], "/usr/bin/make", "/w", 0.0, duration, 0, None)]
    subs = 50
    for s in range(subs):
        start = duration * s / subs * 0.9
        out.append(
            Process(len(out), 2000 + s, 0, ["make", "-C", f"lib{s}"], "/usr/bin/make",
                    f"/w/lib{s}", start, start + duration * 0.1, 0, None)
        )  # fmt: skip
    headers = [f"include/h{i}.h" for i in range(400)]
    while len(out) < n:
        parent = rng.randrange(1, subs + 1)
        p0 = out[parent]
        end0 = p0.end_s or duration
        start = p0.start_s + rng.random() * (end0 - p0.start_s) * 0.8
        length = rng.uniform(0.05, 0.6)
        src = f"lib{parent}/f{len(out)}.c"
        reads = [src, *rng.sample(headers, 11)]
        argv = ["cc", "-O2", "-Wall", "-Iinclude", "-c", src, "-o", src[:-2] + ".o"]
        cc = Process(
            len(out), 10_000 + len(out), parent, argv, "/usr/bin/cc", f"/w/lib{parent}",
            start, start + length, 0, None, reads=reads, writes=[src[:-2] + ".o"],
        )  # fmt: skip
        out.append(cc)
        for tool, share in (("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 0.8), ("/usr/bin/as", 0.15)):
            if len(out) >= n:
                break
            out.append(
                Process(len(out), 10_000 + len(out), cc.id, [tool, src], tool, cc.cwd, start,
                        start + length * share, 0, None, reads=reads if "cc1" in tool else [])
            )  # fmt: skip
    return out[:n]


def samples(procs: list[Process], stacks: int, rng: random.Random) -> bytes:
    """Distinct stacks drawn like a real profile's: walks down one call tree (each
    function calls a few others, some much more often), so stacks share their prefixes."""
    frames = [[f"fn_{i}", f"/w/tools/mod{i % 40}.py", 10 + i % 300] for i in range(3000)]
    pythons = [p.id for p in procs[60:80]]
    seen: set[tuple[int, ...]] = set()
    rows: list[list[object]] = []
    while len(rows) < stacks:
        stack = [0, 1, 2]
        for _ in range(rng.randrange(2, 22)):
            # The callee depends on the caller and a skewed choice among 8.
            pick = min(int(rng.expovariate(1.6)), 7)
            stack.append((stack[-1] * 7919 + pick * 104729 + len(stack)) % len(frames))
        key = tuple(stack)
        if key in seen:
            continue
        seen.add(key)
        rows.append([rng.choice(pythons), 0, 10_000, stack])
    return json.dumps({"frames": frames, "samples": rows}).encode()


def synth_tape(base: Path, out: Path, n: int, stacks: int) -> None:
    rng = random.Random(11)
    with open_tape(base) as t:
        m: Manifest = t.manifest
    with TapeReader(base) as r:
        blobs = [r.read_blob(d) for d in r.blob_digests()]
    w = TapeWriter(out)
    for data in blobs:
        w.add_blob(data)
    procs = processes(n, 120.0, rng)
    digest = w.add_blob(samples(procs, stacks, rng))
    sampling = Sampling("py-spy", 100, None, digest, stacks)
    big = dataclasses.replace(m, processes=procs, duration_s=120.0, sampling=sampling)
    w.commit(big.to_dict())


INTERACT = """() => {
  const bt = window.buildtape, t = [];
  const time = (f) => { const a = performance.now(); f(); t.push(performance.now() - a); };
  time(() => bt.flame.search("fn_1"));
  time(() => bt.flame.zoomTo(1));
  time(() => bt.flame.reset());
  time(() => bt.timeline.zoomAt(0.5, bt.timeline.total / 2));
  return t;
}"""


def first_render(html: Path, runs: int) -> float:
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=LAUNCH_ARGS)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
            page.goto(html.as_uri())
            page.wait_for_function("window.buildtape && window.buildtape.paintedAt")
            times.append(float(page.evaluate("() => window.buildtape.paintedAt")) / 1000)
            INTERACTIONS.append(page.evaluate(INTERACT))
            page.close()
        browser.close()
    return statistics.median(times)


INTERACTIONS: list[list[float]] = []


def html_frames(html: Path) -> int:
    text = html.read_text()
    start = text.index('<script type="application/json" id="bt-data">') + 45
    data = json.loads(text[start : text.index("</script>", start)])
    return len(data["flame"]["name"])


def report(tape: Path, html: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "buildtape", "report", str(tape), "-o", str(html)],
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, default=5000)
    ap.add_argument("--stacks", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-report-"))
    try:
        ws = work / "c-make"
        shutil.copytree(ROOT / "fixtures" / "c-make", ws)
        small = work / "small.tape"
        subprocess.run(
            [sys.executable, "-m", "buildtape", "record", "-q", "--no-store", "-o", str(small),
             "--", "make", "-j2"],
            cwd=ws, check=True, capture_output=True,
        )  # fmt: skip
        big = work / "big.tape"
        synth_tape(small, big, args.processes, args.stacks)
        small_html, big_html = work / "small.html", work / "big.html"
        small_cli = report(small, small_html)
        big_cli = report(big, big_html)
        small_render = first_render(small_html, args.runs)
        INTERACTIONS.clear()
        big_render = first_render(big_html, args.runs)
        search_ms, zoom_ms, reset_ms, tl_zoom_ms = (
            round(statistics.median(col), 1) for col in zip(*INTERACTIONS, strict=True)
        )
        with open_tape(big) as t:
            procs = len(t.manifest.processes)
        frames = html_frames(big_html)
        print(json.dumps({
            "processes": procs,
            "stack_lines": args.stacks,
            "flame_frames": frames,
            "tape_kb": big.stat().st_size // 1024,
            "html_mb": round(big_html.stat().st_size / 1e6, 2),
            "report_command_s": round(big_cli, 2),
            "first_render_s": round(big_render, 3),
            "baseline_small_report_first_render_s": round(small_render, 3),
            "render_ratio_to_small": round(big_render / small_render, 1),
            "flame_search_ms": search_ms,
            "flame_zoom_ms": zoom_ms,
            "flame_reset_ms": reset_ms,
            "timeline_zoom_ms": tl_zoom_ms,
            "baseline_small_report_command_s": round(small_cli, 2),
            "small_html_kb": small_html.stat().st_size // 1024,
        }, indent=2))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
