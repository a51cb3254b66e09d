"""What a process frame is called in a flamegraph of a tape: the program and its role.

Two builds of one project differ in flags (``make CFLAGS=-O0`` and ``make CFLAGS=-O2``),
and a differential flamegraph must still see the same ``make`` and the same compile of
``main.c`` in both, slower or faster, not one tree removed and another added. So a frame
is keyed by what the process *is*, not by every argument:

- the program: the basename of ``argv[0]`` (of the executable when argv is empty);
- a C/C++ compiler (``cc``, ``gcc``, ``clang``, ``g++``…, also ``x86_64-linux-gnu-gcc-12``):
  ``-c SOURCE`` when it compiles a source file, else ``-o OUTPUT`` when it links, else
  nothing; every flag (``-O2``, ``-Wall``, ``-I…``, ``-D…``) is left out;
- ``make``, ``gmake`` and ``ninja``: ``-C DIR`` when given, then the targets named;
  variable assignments (``CFLAGS=-O2``), ``-j N`` and every other option are left out;
- a shell running ``-c SCRIPT``: ``sh -c`` and the key of the script's command when it is
  one simple command (``sh -c gcc -c main.c``), else the script's words without options
  and assignments;
- Python: the script's basename and its first operand (``python3 step.py compile``), or
  ``-c`` and the code's first word;
- ``cc1``, ``as``, ``ld``, ``collect2`` and the like: the program alone;
- anything else: the program and its first argument that is not an option or an
  assignment (``ar rcs``, ``cp main.o``).

Paths inside the workspace are written relative to it, so checkouts in two directories
key alike. A key is one line without ``;`` (the folded format's frame separator) and at
most 60 characters. The same process gives the same key, whatever the run.
"""

from __future__ import annotations

import os
import re
import shlex

from recorder.model import Process

_COMPILERS = frozenset({"cc", "gcc", "g++", "c++", "clang", "clang++", "cpp"})
_BUILD_TOOLS = frozenset({"make", "gmake", "ninja"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
_INTERNAL = ("cc1", "collect2", "ld", "as", "lto")
_SOURCE_EXT = (".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".s", ".S", ".f90")
# Options of make and ninja whose value is the next argument, and those whose value is
# optional (a number when there is one: ``make -j all`` builds ``all``).
_TOOL_VALUE_OPTIONS = frozenset({"-f", "--file", "--makefile", "-I", "-o", "-W"})
_TOOL_NUMBER_OPTIONS = frozenset({"-j", "-k", "-l"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
_SHELL_SYNTAX = re.compile(r"[;&|<>()$`\\\n]")
KEY_MAX = 60


def is_compiler(prog: str) -> bool:
    """``gcc``, ``cc``, ``clang++``, also versioned or cross (``x86_64-linux-gnu-gcc-12``)."""
    name = re.sub(r"-[\d.]+$", "", prog)
    return name in _COMPILERS or name.rsplit("-", 1)[-1] in _COMPILERS


def _operand(arg: str) -> bool:
    return not arg.startswith("-") and not _ASSIGNMENT.match(arg)


def _compiler_role(args: list[str]) -> list[str]:
    sources = [a for a in args if a.endswith(_SOURCE_EXT) and not a.startswith("-")]
    if "-c" in args and sources:
        return ["-c", sources[0]]
    if "-o" in args and args.index("-o") + 1 < len(args):
        return ["-o", args[args.index("-o") + 1]]
    return []


def _build_tool_role(args: list[str], workspace: str | None) -> list[str]:
    directory: str | None = None
    targets: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-C", "--directory"):
            directory = args[i + 1] if i + 1 < len(args) else None
            i += 2
            continue
        if a.startswith("--directory="):
            directory = a.split("=", 1)[1]
        elif a.startswith("-C") and len(a) > 2:
            directory = a[2:]
        elif a in _TOOL_VALUE_OPTIONS or (
            a in _TOOL_NUMBER_OPTIONS and i + 1 < len(args) and args[i + 1].isdigit()
        ):
            i += 1
        elif _operand(a):
            targets.append(a)
        i += 1
    return (["-C", _relative(directory, workspace)] if directory else []) + targets


def _shell_role(args: list[str], workspace: str | None) -> list[str]:
    script = args[args.index("-c") + 1] if len(args) > args.index("-c") + 1 else ""
    if not _SHELL_SYNTAX.search(script):
        try:
            words = shlex.split(script)
        except ValueError:
            words = []
        if words:
            return ["-c", _key_words(words, "", workspace)]
    return ["-c", *[w for w in script.split() if _operand(w)]]


def _python_role(args: list[str]) -> list[str]:
    if "-c" in args[:2]:
        return ["-c", *args[args.index("-c") + 1 :][:1]]
    operands = [a for a in args if _operand(a)]
    if not operands:
        return []
    first = operands[0]
    return [os.path.basename(first) if first.endswith(".py") else first, *operands[1:2]]


def _relative(arg: str, workspace: str | None) -> str:
    if workspace and arg.startswith(workspace.rstrip("/") + "/"):
        return arg[len(workspace.rstrip("/")) + 1 :]
    return arg


def _key_words(argv: list[str], exe: str, workspace: str | None) -> str:
    argv = argv or [os.path.basename(exe) or "?"]
    prog = os.path.basename(argv[0]) or argv[0]
    args = [_relative(a, workspace) for a in argv[1:]]
    if is_compiler(prog):
        role = _compiler_role(args)
    elif prog in _BUILD_TOOLS:
        role = _build_tool_role(args, workspace)
    elif prog in _SHELLS and "-c" in args[:2]:
        role = _shell_role(args, workspace)
    elif prog.startswith("python"):
        role = _python_role(args)
    elif prog.startswith(_INTERNAL):
        role = []
    else:
        role = [a for a in args if _operand(a)][:1]
    return " ".join([prog, *role])


def frame_key(p: Process, workspace: str | None = None) -> str:
    """The flamegraph frame name of ``p``: its program and role (see the module doc)."""
    text = " ".join(_key_words(p.argv, p.exe, workspace).replace(";", ",").split())
    return text if len(text) <= KEY_MAX else text[: KEY_MAX - 1] + "…"
