"""The documentation stays true: README.md is short and its links resolve, its task table is the registry's, and
every path, module, `make` target and `python -m core` command with its flags named in README.md and docs/*.md
exists. The CLI is asked through its --help output in a subprocess, so this does not depend on how it is built."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 200

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./~-])((?:core|ui|tests|bench|docs|assets)/[\w./*-]*[\w*/])")
MODULE = re.compile(r"(?<![\w./-])((?:core|ui|bench)(?:\.[A-Za-z_]\w*)+)")
MAKE = re.compile(r"`make ([a-z][\w-]*)")
CLI = re.compile(r"python -m core(?![.\w])([^`#\n]*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
APP = re.compile(r"python app\.py([^`#\n]*)")


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def where(page: Path) -> str:
    return str(page.relative_to(ROOT))


def joined_lines(page: Path) -> list[str]:
    """The page's lines, with shell continuations (a trailing backslash) joined to the next line."""
    return text(page).replace("\\\n", " ").splitlines()


def load_tasks_table():
    spec = importlib.util.spec_from_file_location("docs_tasks_table", ROOT / "docs" / "tasks_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces as dashes."""
    found = set()
    for line in text(page).splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            found.add(slug)
    return found


# -- README ---------------------------------------------------------------------------------------------------------

def test_readme_is_short():
    lines = len(text(README).splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; at most {MAX_README_LINES} (detail goes in docs/)"


@pytest.mark.parametrize("page", PAGES, ids=where)
def test_links_resolve(page):
    """Every relative link names a file that exists, and an anchor names a heading of that file."""
    broken = []
    for target in LINK.findall(text(page)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target} (no heading '{anchor}' in {path.name})")
    assert not broken, f"{where(page)} links to: {', '.join(broken)}"


def test_readme_task_table_is_the_registry():
    tasks_table = load_tasks_table()
    current = tasks_table.readme_block(text(README))
    assert current is not None, "README.md lost its task table markers; see docs/tasks_table.py"
    assert current == tasks_table.block(), (
        "README.md's task table differs from the task registry (core.tasks.TASKS). Regenerate it with: "
        f"{tasks_table.REGENERATE}")


# -- paths, modules and make targets ------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=where)
def test_named_paths_exist(page):
    missing = sorted({p for p in PATH.findall(text(page))
                      if not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())})
    assert not missing, f"{where(page)} names paths that do not exist: {missing}"


def module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_names(source: Path) -> set[str]:
    names = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def module_exists(dotted: str) -> bool:
    """``core.x.y`` is a module on disk, or a module plus one name defined (or imported) at its top level."""
    parts = dotted.split(".")
    if module_file(parts):
        return True
    source = module_file(parts[:-1])
    return source is not None and parts[-1] in top_level_names(source)


@pytest.mark.parametrize("page", PAGES, ids=where)
def test_named_modules_exist(page):
    missing = sorted({m for m in MODULE.findall(text(page)) if not module_exists(m)})
    assert not missing, f"{where(page)} names modules that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=where)
def test_named_make_targets_exist(page):
    targets = set(re.findall(r"^([a-z][\w-]*):", text(ROOT / "Makefile"), re.M))
    missing = sorted(set(MAKE.findall(text(page))) - targets)
    assert not missing, f"{where(page)} names make targets the Makefile lacks: {missing}"


# -- the CLI --------------------------------------------------------------------------------------------------------

HELP_SCRIPT = r"""
import contextlib, io, json, runpy, sys
out = {}
for name, module, argv in json.loads(sys.argv[1]):
    sys.argv = [module] + argv
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            if module.endswith(".py"):
                runpy.run_path(module, run_name="__main__")
            else:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit:
            pass
    out[name] = buffer.getvalue()
print("\n@@HELP@@" + json.dumps(out))
"""


def ask_help(requests: list[tuple[str, str, list[str]]]) -> dict[str, str]:
    """--help of each (name, module or script, argv) in one subprocess of the venv's python."""
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-c", HELP_SCRIPT, json.dumps(requests)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert "@@HELP@@" in result.stdout, (f"could not ask the CLI for --help:\n{result.stdout[-2000:]}"
                                         f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.rsplit("@@HELP@@", 1)[1])


@cache
def cli_help() -> dict[str, str]:
    """'' -> python -m core --help; each subcommand -> its --help; 'app.py' -> python app.py --help."""
    main = ask_help([("", "core", ["--help"])])[""]
    choices = re.search(r"\{([\w,-]+)\}", main)
    assert choices, f"python -m core --help lists no subcommands:\n{main}"
    subcommands = choices.group(1).split(",")
    found = ask_help([(s, "core", [s, "--help"]) for s in subcommands] + [("app.py", "app.py", ["--help"])])
    return {"": main, **found}


def flags(help_text: str) -> set[str]:
    return set(FLAG.findall(help_text))


def global_options_with_values(main_help: str) -> set[str]:
    """The main parser's options that take a value (``--runs RUNS``)."""
    return set(re.findall(r"(--[a-z][\w-]*) [A-Z_]+", main_help))


def cli_uses(page: Path) -> list[tuple[str, list[str]]]:
    """(line, tokens after `python -m core`) for every command line on the page, up to a comment or a pipe."""
    uses = []
    for line in joined_lines(page):
        for rest in CLI.findall(line):
            rest = re.split(r"\s(?:\||&&|;)\s", rest)[0]
            uses.append((line.strip(), [t for t in rest.split() if t.strip("`.,;:()[]")]))  # no lone brackets
    return uses


@pytest.mark.parametrize("page", PAGES, ids=where)
def test_cli_commands_and_flags_exist(page):
    uses = cli_uses(page)
    if not uses:
        return  # the page names no command
    helps = cli_help()
    main, valued = helps[""], global_options_with_values(helps[""])
    problems = []
    for line, tokens in uses:
        i = 0
        while i < len(tokens) and tokens[i].startswith("--"):  # global options before the subcommand
            flag = tokens[i].split("=")[0]
            if flag not in flags(main):
                problems.append(f"`python -m core {flag}` is no option of python -m core ({line})")
            i += 2 if flag in valued and "=" not in tokens[i] else 1
        if i == len(tokens):
            continue  # `python -m core` alone, or with global options only
        command = tokens[i].strip("`.,;:)")
        if command not in helps or command in ("", "app.py"):
            problems.append(f"`python -m core {command}` is no command ({line})")
            continue
        unknown = sorted(flags(" ".join(tokens[i + 1:])) - flags(helps[command]))
        problems += [f"`python -m core {command} {flag}` is no option ({line})" for flag in unknown]
    assert not problems, f"{where(page)}:\n" + "\n".join(problems)


def test_app_flags_exist():
    named = {flag for page in PAGES for line in joined_lines(page) for rest in APP.findall(line)
             for flag in flags(rest)}
    unknown = sorted(named - flags(cli_help()["app.py"]))
    assert not unknown, f"`python app.py` has no options {unknown}"
