"""The layout of docs/../DESIGN.md, checked from the code's own imports and calls.

Imports run one way: ``buildtape -> {recorder, replay, flame, reports, history}``,
``replay -> recorder``, ``flame -> recorder``, ``reports -> {flame, replay, recorder}``,
``history -> recorder``; ``recorder`` imports none of the others and nothing imports
``buildtape``. The engine packages never import click, never print and never exit; in
``buildtape`` only the entry point exits. Every import counts, also one inside a function
or under ``TYPE_CHECKING``: a lazy import runs the wrong way as surely as an eager one.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ALLOWED = {
    "buildtape": {"recorder", "replay", "flame", "reports", "history"},
    "recorder": set(),
    "replay": {"recorder"},
    "flame": {"recorder"},
    "reports": {"flame", "replay", "recorder"},
    "history": {"recorder"},
}
ENGINES = ("recorder", "replay", "flame", "reports", "history")


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(tree: ast.Module) -> set[str]:
    """Every absolute module name imported anywhere in the file."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _where(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_the_way_the_design_says(package: str) -> None:
    wrong = []
    for path in _modules(package):
        for name in sorted(_imports(_tree(path))):
            top = name.split(".")[0]
            if top in ALLOWED and top != package and top not in ALLOWED[package]:
                wrong.append(f"{_where(path)} imports {name}")
    assert wrong == []


def test_no_relative_imports_hide_a_direction() -> None:
    relative = [
        _where(path)
        for package in ALLOWED
        for path in _modules(package)
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def _calls(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, what) of each print(), exit()/quit() and sys.exit() call."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("print", "exit", "quit"):
            out.append((node.lineno, f"{f.id}()"))
        elif (
            isinstance(f, ast.Attribute)
            and f.attr in ("exit", "_exit")
            and isinstance(f.value, ast.Name)
            and f.value.id in ("sys", "os")
        ):
            out.append((node.lineno, f"{f.value.id}.{f.attr}()"))
    return out


@pytest.mark.parametrize("package", ENGINES)
def test_engine_packages_never_import_click_print_or_exit(package: str) -> None:
    found = []
    for path in _modules(package):
        tree = _tree(path)
        found += [
            f"{_where(path)} imports {n}" for n in _imports(tree) if n.split(".")[0] == "click"
        ]
        found += [f"{_where(path)}:{line} {what}" for line, what in _calls(tree)]
    assert found == []


def test_only_the_entry_point_exits() -> None:
    found = [
        f"{_where(path)}:{line} {what}"
        for path in _modules("buildtape")
        if path.name != "cli.py"
        for line, what in _calls(_tree(path))
        if what != "print()"
    ]
    assert found == []


def test_only_the_history_store_speaks_sql() -> None:
    users = [
        _where(path)
        for package in ALLOWED
        for path in _modules(package)
        if "sqlite3" in _imports(_tree(path))
    ]
    assert users == ["history/store.py"]


def test_error_classes_live_in_errors_modules() -> None:
    """Each package's exceptions are in its errors.py, where the exit-code table finds them."""
    elsewhere = []
    for package in (*ENGINES, "buildtape"):
        for path in _modules(package):
            if path.name == "errors.py":
                continue
            for node in ast.walk(_tree(path)):
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception")))
                    for b in node.bases
                ):
                    elsewhere.append(f"{_where(path)}: {node.name}")
    assert elsewhere == []


def _error_classes() -> list[type[BaseException]]:
    out: list[type[BaseException]] = []
    for package in (*ENGINES, "buildtape"):
        module = importlib.import_module(f"{package}.errors")
        out += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__
        ]
    return out


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_error_class_has_an_exit_code(cls: type[BaseException]) -> None:
    from buildtape.errors import EXIT_CODES

    assert any(c in EXIT_CODES for c in cls.__mro__), "add it to buildtape.errors.EXIT_CODES"


def test_exit_codes_follow_the_class_not_the_message_nor_the_order() -> None:
    from buildtape.errors import EXIT_CODES, exit_code
    from buildtape.exit_codes import ExitCode
    from history.errors import HistoryError, NothingToExport
    from recorder.errors import CommandNotFound, TapeError, TapeNotFound, TapeWriteFailed

    assert exit_code(TapeNotFound("no tape at x")) == ExitCode.NOT_FOUND
    assert exit_code(TapeError("no tape at x")) == ExitCode.BAD_TAPE  # the text says nothing
    assert exit_code(CommandNotFound("make")) == ExitCode.COMMAND_NOT_FOUND
    assert exit_code(HistoryError("--since")) == ExitCode.IO_ERROR
    assert exit_code(NothingToExport("empty")) == ExitCode.USAGE
    assert exit_code(TapeWriteFailed("disk full", 2)) == 2  # the build's own failure wins
    assert exit_code(FileNotFoundError(2, "gone")) == ExitCode.NOT_FOUND
    assert exit_code(PermissionError(13, "no")) == ExitCode.IO_ERROR
    assert exit_code(KeyboardInterrupt()) == ExitCode.INTERRUPTED == 130
    assert exit_code(ValueError("a bug")) == ExitCode.INTERNAL

    class Unlisted(TapeNotFound):
        pass

    # Resolved by the MRO: a class the table does not name takes its nearest parent's code.
    assert Unlisted not in EXIT_CODES
    assert exit_code(Unlisted("x")) == ExitCode.NOT_FOUND


def test_a_missing_packaged_asset_is_a_clear_error_not_an_internal_one() -> None:
    from buildtape.errors import exit_code, message
    from buildtape.exit_codes import ExitCode
    from flame import svg
    from flame.errors import FlameAssetError
    from reports import render
    from reports.errors import ReportAssetError

    with pytest.raises(ReportAssetError) as report_exc:
        render._asset("no-such-asset.css")
    with pytest.raises(ReportAssetError):
        render._template("no-such-page.html.j2")
    with pytest.raises(FlameAssetError) as flame_exc:
        svg.asset("no-such-asset.js")
    for exc in (report_exc.value, flame_exc.value):
        assert exit_code(exc) == ExitCode.IO_ERROR
        assert "reinstall buildtape" in message(exc)
