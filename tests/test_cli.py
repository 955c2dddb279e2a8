"""The command line: bad usage gives one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from research.demo import notebook_files
from research.store.results import load_results
from research.testbed import Testbed


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "research", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


def assert_usage_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--out", "x", "--port", "0"], "--port: must be at least 1"),
        (["scan", "--out", "x", "--port", "70000"], "must be at most 65535"),
        (["scan", "--out", "x", "--concurrency", "-1"], "--concurrency: must be at least 1"),
        (["scan", "--out", "x", "--timeout", "0"], "--timeout: must be positive"),
        (["scan", "a.example"], "--out"),
        (["scan", "--out", "x"], "either DOMAIN arguments or --domains FILE"),
        (["scan", "--out", "x", "--domains", "/nonexistent/list.csv"], "cannot read"),
        (["scan", "a.example", "--out", "x", "--resolver", "not-an-ip"], "is not IP[:PORT]"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage(tmp_path: Path, args: list[str], needle: str) -> None:
    assert_usage_error(run(*args, cwd=tmp_path), needle)


def test_empty_and_binary_domain_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02")
    (tmp_path / "nodomain.csv").write_text("name,rank\nx.example,1\n")
    for name, needle in [("empty.txt", "no domains"), ("bin.dat", "binary"),
                         ("nodomain.csv", "no 'domain' column")]:
        proc = run("scan", "--domains", str(tmp_path / name), "--out", str(tmp_path / "o"))
        assert_usage_error(proc, needle)


def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    proc = run("scan", "a.example", "--out", str(tmp_path / "afile"),
               "--resolver", "127.0.0.1:9")
    assert_usage_error(proc, "not a directory")


def test_version_and_help() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("starttls-survey ")
    proc = run("scan", "--help")
    assert proc.returncode == 0 and "--resume" in proc.stdout and "--ehlo-name" in proc.stdout


def test_notebooks_are_copied_out_and_never_overwritten_unasked(tmp_path: Path) -> None:
    dest = tmp_path / "nb"
    proc = run("notebooks", str(dest))
    assert proc.returncode == 0, proc.stderr
    shipped = notebook_files()
    assert [p.name for p in sorted(dest.iterdir())] == [p.name for p in shipped]
    assert all((dest / p.name).read_bytes() == p.read_bytes() for p in shipped)
    assert proc.stdout.splitlines()[:len(shipped)] == [str(dest / p.name) for p in shipped]
    # An edited copy is the user's: kept, with one line saying how to replace it.
    mine = dest / shipped[0].name
    mine.write_text("my edits")
    assert_usage_error(run("notebooks", str(dest)),
                       f"{mine} exists and {len(shipped) - 1} more; use --force to overwrite")
    assert mine.read_text() == "my edits"
    assert run("notebooks", str(dest), "--force").returncode == 0
    assert mine.read_bytes() == shipped[0].read_bytes()
    assert_usage_error(run("notebooks", str(mine / "sub")), "cannot write the notebooks")


def test_dask_scheduler_without_the_dask_extra_names_it(tmp_path: Path) -> None:
    """As in an environment installed without ``[dask]``: distributed cannot be imported."""
    code = ("import sys; sys.modules['distributed'] = None; from research.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-c", code, "scan", "a.example", "--out", str(tmp_path / "out"),
         "--resolver", "127.0.0.1:9", "--dask-scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == ("starttls-survey: error: --dask-scheduler needs Dask, an optional "
                           "part: pip install 'starttls-survey[dask]'\n")
    assert not (tmp_path / "out").exists()


def test_output_directory_that_cannot_be_created(tmp_path: Path) -> None:
    # Tests run as root, so permissions stop nothing: a regular file as a parent does.
    (tmp_path / "afile").write_text("x")
    proc = run("scan", "a.example", "--out", str(tmp_path / "afile" / "results"),
               "--resolver", "127.0.0.1:9")
    assert_usage_error(proc, "output directory is not writable (Not a directory)")


def test_output_directory_on_a_read_only_filesystem() -> None:
    # sysfs refuses new files even to root; where it is not mounted, there is nothing to test.
    target = Path("/sys/kernel")
    if not target.is_dir():
        pytest.skip("no /sys/kernel: no read-only directory that refuses root here")
    proc = run("scan", "a.example", "--out", str(target), "--resolver", "127.0.0.1:9")
    assert_usage_error(proc, "output directory is not writable")


def test_bad_rows_are_invalid_rows_not_errors(cases_testbed: Testbed, tmp_path: Path) -> None:
    long_name = ".".join(["abcdefghi"] * 26) + ".test"
    rows = [
        "no-starttls.test", "bücher.test", "xn--bcher-kva.test", "NO-STARTTLS.test.",
        "a" * 64 + ".test", long_name, "*.wild.test", "192.0.2.1", "[2001:db8::1]",
        "not a.domain",
    ]
    domain_list = tmp_path / "domains.txt"
    domain_list.write_text("\n".join(rows) + "\n", encoding="utf-8")
    proc = run("scan", "--domains", str(domain_list), "--out", str(tmp_path / "o"),
               "--resolver", cases_testbed.resolver, "--port", str(cases_testbed.smtp_port),
               "--timeout", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    domains = load_results(tmp_path / "o").domains
    assert list(domains["rank"]) == list(range(1, 11))
    assert list(domains["dns_status"]) == ["mx", "nxdomain"] + ["invalid"] * 8
    assert list(domains["domain"][:2]) == ["no-starttls.test", "xn--bcher-kva.test"]
    errors = list(domains["error"][2:])
    for error, needle in zip(errors, [
        "duplicate of xn--bcher-kva.test at rank 2", "duplicate of no-starttls.test at rank 1",
        "label longer than 63", "longer than 253", "wildcard", "IP literal", "IP literal",
        "invalid character",
    ], strict=True):
        assert needle in error
