"""A tape as a JUnit XML report, the shape CI systems display (GitLab's test reports,
Jenkins, GitHub actions that publish JUnit): the build is a ``testsuite``, each outermost
step (docs/glossary.md) a ``testcase``, and a failing step carries a ``failure`` whose
message is its first error and whose text is what it wrote while it ran.

A failed step of a build that succeeded (a configure probe) is an expected failure: it
passes, with a note in its ``system-out``. Everything from the tape is made plain first
(no escape sequences, no control characters XML 1.0 cannot hold), then escaped by the
XML writer, so the file is well-formed whatever the tape holds.
"""

from __future__ import annotations

import os
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from recorder.model import Process
from recorder.steps import failing, outermost_steps
from recorder.summary import step_first_error, step_lines
from recorder.tape import Tape
from reports.untrusted_text import plain, shorten


@dataclass(frozen=True)
class JunitOptions:
    # A failure's text holds at most this many of the lines its step wrote (the last ones).
    output_lines: int = 50
    # Names and messages are cut to this many characters.
    width: int = 300


# Characters XML 1.0 cannot hold at all, left after ``plain`` removed the controls.
_NOT_XML = re.compile("[\ufffe\uffff]")


def _x(text: str, width: int, one_line: bool = True) -> str:
    return _NOT_XML.sub("", shorten(plain(text, one_line=one_line), width))


def _seconds(p: Process) -> str:
    return f"{p.duration_s or 0.0:.3f}"


def _outcome(p: Process) -> str:
    return f"signal {p.signal}" if p.signal else f"exit {p.exit_code}"


def render_junit(tape: Tape, options: JunitOptions | None = None) -> str:
    """The tape as JUnit XML text (UTF-8, with its declaration), ending in a newline."""
    opts = options or JunitOptions()
    m = tape.manifest
    steps = sorted(outermost_steps(m), key=lambda p: (p.start_s, p.id))
    failed_build = m.status != "succeeded"
    # A failing step, and the process where its failure started (for its first error).
    origins = {step.id: origin for step, origin in failing(m)} if failed_build else {}
    failures = sum(1 for p in steps if p.failed and failed_build)
    suites = ET.Element(
        "testsuites",
        {
            "name": "buildtape",
            "tests": str(len(steps)),
            "failures": str(failures),
            "errors": "0",
            "time": f"{m.duration_s:.3f}",
        },
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": _x(shlex.join(m.argv), opts.width),
            "tests": str(len(steps)),
            "failures": str(failures),
            "errors": "0",
            "skipped": "0",
            "time": f"{m.duration_s:.3f}",
            # JUnit's timestamp is a local date-time without a zone: UTC, said in properties.
            "timestamp": m.started_at.rstrip("Z").split(".")[0],
            "hostname": _x(m.host.hostname, opts.width),
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("buildtape.tape", str(tape.path)),
        ("buildtape.status", m.status),
        ("buildtape.started_at", m.started_at),
        *((f"buildtape.label.{k}", v) for k, v in sorted(m.labels.items())),
    ):
        ET.SubElement(
            props, "property", {"name": _x(name, opts.width), "value": _x(value, opts.width)}
        )
    for p in steps:
        program = os.path.basename(p.argv[0]) if p.argv else "?"
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "name": _x(f"#{p.id} {shlex.join(p.argv)}", opts.width),
                "classname": _x(f"buildtape.{program}", opts.width),
                "time": _seconds(p),
            },
        )
        if not p.failed:
            continue
        if not failed_build:
            note = f"{_outcome(p)}: an expected failure (the build succeeded)"
            ET.SubElement(case, "system-out").text = note
            continue
        first = step_first_error(tape, p, origins.get(p.id))
        message = first.line if first is not None else _outcome(p)
        failure = ET.SubElement(
            case, "failure", {"message": _x(message, opts.width), "type": _outcome(p)}
        )
        lines = step_lines(tape, p)[-opts.output_lines :]
        failure.text = _x("\n".join(lines), 1_000_000, one_line=False) or _outcome(p)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
