"""A tape as a compact Markdown summary, for ``$GITHUB_STEP_SUMMARY`` and merge-request
comments: status, duration, the failing steps with their first error, the slowest steps and
the commands that replay the build.

Everything taken from a tape is untrusted: it may hold HTML, backticks, pipes or escape
sequences meant to break out of a table or a code span. Each piece goes through one of
three writers: ``_text`` (prose and table cells: every ASCII punctuation character
backslash-escaped, which CommonMark and GitHub's and GitLab's dialects read as the literal
character, so no tag, link, emphasis or cell border can start), ``_code`` (a code span whose
fence is longer than any run of backticks inside it) and ``_block`` (a fenced block, fenced
the same way). Control characters and terminal escapes are removed first.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from recorder.model import Process
from recorder.summary import TapeSummary
from reports.untrusted_text import plain, shorten


@dataclass(frozen=True)
class MarkdownOptions:
    # How many of the slowest steps the table lists.
    slowest: int = 5
    # How many failing steps are shown with their first error.
    failing: int = 3
    # The tape as the replay commands should name it (the path it was read from when None).
    tape_name: str | None = None
    # Command lines and error lines are cut to this many characters.
    width: int = 160


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_BACKTICKS = re.compile(r"`+")
_STATUS = {"succeeded": "✅", "failed": "❌", "interrupted": "⏹️"}


def _text(raw: str, width: int = 10_000) -> str:
    """Untrusted text as inline Markdown that shows exactly that text."""
    return _PUNCTUATION.sub(r"\\\1", shorten(plain(raw, one_line=True), width))


def _code(raw: str, width: int, in_table: bool = False) -> str:
    """Untrusted text as a code span (in a table, its pipes escaped: GFM splits cells on
    them even inside code)."""
    body = shorten(plain(raw, one_line=True), width)
    if in_table:
        body = body.replace("|", "\\|")
    longest = max((len(m) for m in _BACKTICKS.findall(body)), default=0)
    fence = "`" * (longest + 1)
    # A span that starts or ends with a backtick needs a space between it and the fence.
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _block(lines: list[str], info: str = "") -> list[str]:
    """Untrusted lines as a fenced code block that nothing inside can close."""
    body = [plain(line, one_line=True) for line in lines]
    longest = max((len(m) for line in body for m in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *body, fence]


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s:.2f} s" if s < 120 else f"{int(s // 60)} min {s % 60:.0f} s"


def _outcome(p: Process) -> str:
    return f"signal {p.signal}" if p.signal else f"exit {p.exit_code}"


def render_markdown(summary: TapeSummary, options: MarkdownOptions | None = None) -> str:
    """The summary as Markdown, ending in a newline."""
    opts = options or MarkdownOptions()
    m = summary.tape.manifest
    tape_name = opts.tape_name or str(summary.tape.path)
    status = m.status if not m.signal else f"{m.status} ({m.signal})"
    if m.exit_code not in (0, None):
        status = f"{m.status} (exit {m.exit_code})"
    out = [
        f"### {_STATUS.get(m.status, '')} buildtape: {_code(shlex.join(m.argv), opts.width)} "
        f"{_text(status)} in {_duration(m.duration_s)}",
        "",
        "| | |",
        "|---|---|",
        f"| status | {_text(status)} |",
        f"| duration | {_duration(m.duration_s)} |",
        f"| started | {_text(m.started_at)} |",
        f"| processes | {len(m.processes)} |",
    ]
    if m.git is not None:
        where = f"{m.git.branch or '(detached)'} @ {(m.git.commit or '?')[:12]}"
        dirty = f", {len(m.git.dirty)} dirty paths" if m.git.dirty else ""
        out.append(f"| git | {_text(where + dirty)} |")
    if m.labels:
        labels = " ".join(f"{k}={v}" for k, v in sorted(m.labels.items()))
        out.append(f"| labels | {_text(labels, opts.width)} |")
    out.append(f"| host | {_text(f'{m.host.hostname} ({m.host.os} {m.host.arch})')} |")

    fails = summary.failing if m.status != "succeeded" else []
    if fails:
        out += ["", f"#### Failing step{'s' if len(fails) > 1 else ''}", ""]
        for i, (step, origin) in enumerate(fails[: opts.failing]):
            head = f"- #{step.id} {_code(shlex.join(step.argv), opts.width)} ({_outcome(step)})"
            if origin is not step:
                head += f", failed in #{origin.id} {_code(shlex.join(origin.argv), 60)}"
            out.append(head)
            error = summary.step_errors[i] if i < len(summary.step_errors) else None
            if error:
                out += ["", *("  " + line for line in _block([shorten(error, 400)], "text"))]
        if len(fails) > opts.failing:
            out.append(f"- … and {len(fails) - opts.failing} more (`buildtape show`)")
        if not any(summary.step_errors) and summary.error_line:
            out += ["", "First error line of the build's output:", ""]
            out += _block([shorten(summary.error_line, 400)], "text")

    top = summary.slowest[: opts.slowest]
    if top:
        out += ["", "#### Slowest steps", "", "| step | time | status |", "|---|---:|---|"]
        for p in top:
            cell = _code(shlex.join(p.argv), opts.width, in_table=True)
            out.append(f"| #{p.id} {cell} | {_duration(p.duration_s)} | {_outcome(p)} |")

    replay = [f"buildtape replay {shlex.quote(tape_name)}"]
    if fails:
        replay.append(f"buildtape replay {shlex.quote(tape_name)} --step {fails[0][0].id}")
    out += ["", "#### Replay", "", *_block(replay, "sh")]
    return "\n".join(out) + "\n"
