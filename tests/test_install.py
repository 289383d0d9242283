"""User story: a platform team installs CityPulse like any Python package (`pip install .`
from a clean clone, as the Docker image does) and points Airflow at `dags/`; nothing relies on
the checkout being on `sys.path`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import ROOT

PARSE = """
import json, sys
import citypulse
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"package": citypulse.__file__, "dags": sorted(bag.dags),
                  "errors": {k: str(v) for k, v in bag.import_errors.items()}}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clean clone of the committed project, installed (not editable) into a fresh
    virtualenv; the dependencies come from the test run's own environment, so nothing is
    downloaded. Returns the virtualenv's python and the clone."""
    base = tmp_path_factory.mktemp("install")
    clone = base / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    fresh = base / "venv"
    venv.create(fresh, with_pip=False)  # pip and setuptools come with the dependencies
    python = fresh / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies, appended to sys.path after the fresh site-packages (whose own
    # citypulse therefore wins); the .pth files there (an editable install) are not read.
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-build-isolation", str(clone)],
        check=True,
        cwd=base,
        env=env,
    )
    return python, clone


def _run(python: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    clean.pop("CITYPULSE_CONTRACTS_DIR", None)
    return subprocess.run(
        [str(python), *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True
    )


@pytest.mark.slow
def test_the_installed_package_imports_from_anywhere_with_its_sql_and_pages(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    python, _ = installed
    code = (
        "import json, citypulse, citypulse_dev; from citypulse import settings; "
        "from pathlib import Path; p = Path(citypulse.__file__).parent; "
        "print(json.dumps({'file': citypulse.__file__, "
        "'schema': (settings.SQL_DIR / 'schema' / '10_schema.sql').is_file(), "
        "'views': len(list((p / 'sql' / 'views').rglob('*.sql'))), "
        "'static': (p / 'ui' / 'static' / 'citypulse.js').is_file(), "
        "'profiles': len(list((Path(citypulse_dev.__file__).parent / 'samples').glob('*.yaml')))}))"
    )
    out = _run(python, "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert "site-packages" in found["file"] and str(ROOT) not in found["file"]
    assert found["schema"] and found["static"]
    assert found["views"] == len(list((ROOT / "include/citypulse/sql/views").rglob("*.sql")))
    assert found["profiles"] == len(list((ROOT / "include/contracts").glob("*.yaml")))


@pytest.mark.slow
def test_airflow_parses_dags_from_another_folder_with_the_installed_package(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    python, clone = installed
    out = _run(
        python,
        "-c",
        PARSE,
        str(clone / "dags"),
        cwd=tmp_path,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(clone / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        CITYPULSE_DATA_DIR=str(tmp_path / "data"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert "site-packages" in parsed["package"]
    assert parsed["errors"] == {}
    assert parsed["dags"] == [
        "chicago_crime",
        "hotspot_retrain",
        "montgomery_traffic",
        "nyc_311",
        "seattle_crime",
    ]
    assert "sys.path" not in "".join(p.read_text() for p in (clone / "dags").glob("*.py"))


@pytest.mark.slow
def test_the_console_script_checks_the_contracts(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    python, clone = installed
    script = python.parent / "citypulse"
    ok = subprocess.run(
        [str(script), "contracts", "check", "--dir", str(clone / "include" / "contracts")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("ok      ") == 4
    broken = tmp_path / "contracts"
    broken.mkdir()
    (broken / "bad.yaml").write_text("dag_id: Not An Id\n")
    bad = subprocess.run(
        [str(script), "contracts", "check", "--dir", str(broken)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "bad.yaml" in bad.stdout
    usage = subprocess.run([str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "citypulse backfill" in usage.stderr
    assert sys.executable  # the suite's own interpreter is untouched
