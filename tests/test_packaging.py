"""The package as a user gets it: built with ``python -m build``, installed from the wheel into a
fresh virtual environment, run from a directory that is not a clone.

How it gets there, without the package index:

- The source is a copy of the clone's files (``git ls-files``: no stale ``build/``, no
  egg-info), built twice: a wheel straight from it, and an sdist with a wheel built from the
  sdist (``python -m build``'s default); the two wheels must be the same, file for file.
  ``--no-isolation`` builds with this environment's setuptools (the dev extra asks for the
  floor ``[build-system] requires`` names, and build checks it is met), so nothing is
  downloaded.
- The fresh environment gets the wheel's dependencies from a wheelhouse packed from the
  development environment's installed distributions (:mod:`support.wheels`, kept in pytest's
  cache between runs): ``pip install --no-index --find-links WHEELHOUSE``, pip's configuration
  files and ``PIP_*`` variables left out, so only the wheel's own ``Requires-Dist`` decides
  what is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import smtplib
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.foreground import foreground, interrupt
from support.repo import REPO_DIR
from support.wheels import requirements_of, wheelhouse

from research.demo import notebook_files
from research.store.schema import HostStatus
from research.testbed import list_scenarios, load_scenario

pytestmark = [pytest.mark.slow, pytest.mark.testbed]

PROJECT = tomllib.loads((REPO_DIR / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DIST = PROJECT["name"].replace("-", "_")


@dataclass(frozen=True)
class Built:
    source: Path
    """The copy of the clone the distributions were built from."""
    wheel: Path
    """Built from the sdist, as pip builds one from PyPI's sdist."""
    sdist: Path
    tree_wheel: Path
    """Built from the source directly."""


@dataclass(frozen=True)
class Installed:
    bin: Path
    package: Path
    """``research/`` in the environment's site-packages."""


def run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=_clean_env(),
                          capture_output=True, text=True, timeout=600, check=False)


def _clean_env() -> dict[str, str]:
    """This process's environment without what points at the clone or steers pip."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def copy_clone(dest: Path) -> Path:
    """The clone's files as git sees them (tracked, and new ones not ignored), links kept."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO_DIR, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src, target = REPO_DIR / name, dest / name
        if not os.path.lexists(src):
            continue  # deleted in the working tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


def build(source: Path, out: Path, *flags: str) -> None:
    proc = run([sys.executable, "-m", "build", "--no-isolation", *flags, "--outdir", out,
                source], cwd=source)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("packaging")
    source = copy_clone(root / "src")
    build(source, root / "tree", "--wheel")
    build(source, root / "dist")  # the sdist, then a wheel from the sdist
    (wheel,) = (root / "dist").glob("*.whl")
    (sdist,) = (root / "dist").glob("*.tar.gz")
    (tree_wheel,) = (root / "tree").glob("*.whl")
    return Built(source, wheel, sdist, tree_wheel)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Installed:
    cache = request.config.cache
    house = (cache.mkdir("wheelhouse") if cache is not None
             else tmp_path_factory.mktemp("wheelhouse"))
    wheelhouse(requirements_of(built.wheel), house)
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False, clear=True)
    python = env_dir / "bin" / "python"
    proc = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index",
                "--find-links", house, "--no-compile", built.wheel], cwd=env_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    where = run([python, "-c", "import research, pathlib; "
                 "print(pathlib.Path(research.__file__).parent)"], cwd=env_dir)
    package = Path(where.stdout.strip())
    assert package.is_relative_to(env_dir), where.stdout + where.stderr
    return Installed(env_dir / "bin", package)


def files_of(path: Path) -> set[str]:
    """Every file below ``path`` (relative, as POSIX paths), byte code left out."""
    return {p.relative_to(path).as_posix() for p in path.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def wheel_contents(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}


# -- the distributions ----------------------------------------------------------------------


def test_wheel_holds_the_package_and_its_data_and_nothing_else(built: Built) -> None:
    names = set(wheel_contents(built.wheel))
    info = f"{DIST}-{PROJECT['version']}.dist-info"
    package = {n for n in names if n.startswith("research/")}
    # Every file of the package in the clone, package data included, and nothing more.
    assert package == {f"research/{f}" for f in files_of(built.source / "research")}
    for shipped in ("research/testbed/scenarios/isc-2019.toml",
                    "research/testbed/scenarios/README.md",
                    "research/scan/lists/isc-2019-top100.csv",
                    "research/traffic/samples/postfix-maillog.log",
                    "research/traffic/samples/README.md",
                    "research/demo/notebooks/01_reproduce_isc_2019.ipynb",
                    "research/py.typed"):
        assert shipped in names
    assert names - package == {f"{info}/{n}" for n in (
        "METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt", "licenses/LICENSE")}
    with zipfile.ZipFile(built.wheel) as zf:
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert "starttls-survey = research.cli:main" in entry_points


def test_wheel_metadata_keeps_heavy_parts_in_extras(built: Built) -> None:
    core = [r for r in requirements_of(built.wheel) if "extra ==" not in r]
    extras = {r.split(";")[0].split(">=")[0].strip(): r.split('extra == "')[1].rstrip('"')
              for r in requirements_of(built.wheel) if "extra ==" in r}
    assert not any(r.startswith(("dask", "distributed", "jupyterlab", "ipykernel", "nbclient"))
                   for r in core)
    assert extras["dask"] == extras["distributed"] == "dask"
    assert extras["jupyterlab"] == extras["ipykernel"] == "jupyter"
    assert built.wheel.name == f"{DIST}-{PROJECT['version']}-py3-none-any.whl"


def test_sdist_builds_the_same_wheel_as_the_source(built: Built) -> None:
    assert wheel_contents(built.wheel) == wheel_contents(built.tree_wheel)
    top = f"{DIST}-{PROJECT['version']}"
    with tarfile.open(built.sdist) as tar:
        names = {m.name.removeprefix(f"{top}/") for m in tar.getmembers() if m.isfile()}
    package = {n for n in names if n.startswith("research/")}
    assert package == {f"research/{f}" for f in files_of(built.source / "research")}
    others = {n for n in names - package if not n.startswith(f"{DIST}.egg-info/")}
    assert others == {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
                      "setup.cfg"}


# -- the installed wheel, run from elsewhere --------------------------------------------------


def test_version_is_the_projects(installed: Installed, tmp_path: Path) -> None:
    proc = run([installed.bin / "starttls-survey", "--version"], cwd=tmp_path)
    assert proc.stdout == f"starttls-survey {PROJECT['version']}\n"


def test_demo_runs_from_an_unrelated_directory(installed: Installed, tmp_path: Path) -> None:
    before = files_of(installed.package)
    proc = run([installed.bin / "starttls-survey", "demo", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    counts = load_scenario("isc-2019").counts()
    assert (counts.domains, counts.no_starttls, counts.no_tls_1_2) == (100, 9, 1)
    assert f"Survey of {counts.domains} domains" in proc.stdout
    assert f"Domains without STARTTLS ({counts.no_starttls})" in proc.stdout
    assert f"without TLS ≥ 1.2 on any MX host ({counts.no_tls_1_2})" in proc.stdout
    # Results go under the current directory, by default results/demo-isc-2019 ...
    out = tmp_path / "results" / "demo-isc-2019"
    assert "Tables written to results/demo-isc-2019/" in proc.stdout
    assert (out / "hosts.parquet").is_file() and (out / "report" / "report.html").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
    # ... and nothing into the installed package.
    assert files_of(installed.package) == before


def test_testbed_up_runs_from_an_unrelated_directory(installed: Installed,
                                                     tmp_path: Path) -> None:
    domains = tmp_path / "domains.csv"
    scenario = load_scenario("isc-2019")
    with foreground([installed.bin / "starttls-survey", "testbed", "up", "--dns-port", "0",
                     "--smtp-port", "0", "--domain-list", domains],
                    cwd=tmp_path, env=_clean_env(), stderr=subprocess.PIPE) as (proc, text):
        assert (f"Testbed 'isc-2019' is up: {len(scenario.domains)} domains, "
                f"{len(scenario.hosts)} MX hosts") in text
        assert f"starttls-survey scan --domains {domains} --resolver 127.0.0.1:" in text
        assert len(domains.read_text().splitlines()) == 1 + len(scenario.domains)
        # The servers answer: one STARTTLS host's SMTP greeting and EHLO.
        port = int(text.split("  SMTP     port ")[1].split()[0])
        host = next(h for h in scenario.hosts if h.expect_status == HostStatus.STARTTLS)
        with smtplib.SMTP(host.addresses[0], port, timeout=10) as smtp:
            code, _ = smtp.ehlo("packaging-test.invalid")
            assert code == 250 and smtp.has_extn("starttls")
        assert "Testbed stopped." in interrupt(proc)


def test_scenarios_list_and_notebooks_come_with_the_wheel(installed: Installed,
                                                          tmp_path: Path) -> None:
    cli = installed.bin / "starttls-survey"
    listed = run([cli, "testbed", "list"], cwd=tmp_path)
    assert listed.stdout.split() == list_scenarios()
    study = run([installed.bin / "python", "-c",
                 "from research.scan.inputs import read_domain_list as r; "
                 "d = r('isc-2019-top100'); print(len(d), d.source)"], cwd=tmp_path)
    assert study.stdout == "100 isc-2019-top100\n", study.stderr
    copied = run([cli, "notebooks", "nb"], cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (tmp_path / "nb").iterdir()) == [
        p.name for p in notebook_files()]
    for shipped in notebook_files():
        assert (tmp_path / "nb" / shipped.name).read_bytes() == shipped.read_bytes()
    # The core install brings no Jupyter: the command says how to get one.
    assert "pip install 'starttls-survey[jupyter]'" in copied.stdout


def test_missing_dask_extra_is_named(installed: Installed, tmp_path: Path) -> None:
    proc = run([installed.bin / "starttls-survey", "scan", "one.test", "--out", "out",
                "--resolver", "127.0.0.1:9", "--dask-scheduler", "tcp://127.0.0.1:9"],
               cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("starttls-survey: error: --dask-scheduler needs Dask, an optional "
                           "part: pip install 'starttls-survey[dask]'\n")
    assert not (tmp_path / "out").exists()
