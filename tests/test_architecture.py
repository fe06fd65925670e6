"""The house's shape: the import-linter contracts in pyproject.toml hold (layers as the pipeline, no cycle in any
folder, core never imports ui), and no module grows past a page."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 350


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_core_is_in_pipeline_folders():
    folders = [p.parent.name for p in (ROOT / "core").glob("*/__init__.py")]
    assert len(folders) >= 8, folders
    loose = sorted(p.name for p in (ROOT / "core").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"modules outside the pipeline folders: {loose}"


def test_no_module_over_a_page():
    long = {str(p.relative_to(ROOT)): n for p in [*ROOT.glob("core/**/*.py"), *ROOT.glob("ui/**/*.py")]
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
