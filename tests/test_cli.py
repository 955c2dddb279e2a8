"""The command line: bad usage gives one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import IO

import pytest

from research.demo import notebook_files
from research.store.results import load_results
from research.testbed import Testbed


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "research", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


def run_with_stdin(stdin: bytes | IO[bytes], *args: str,
                   cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``run`` with standard input: bytes through a pipe, or an open file (a redirection)."""
    piped = isinstance(stdin, bytes)
    proc = subprocess.run(
        [sys.executable, "-m", "research", *args], input=stdin if piped else None,
        stdin=None if piped else stdin, capture_output=True, timeout=120, cwd=cwd,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def zipped(data: bytes, *names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names or ("top-1m.csv",):
            archive.writestr(name, data)
    return buffer.getvalue()


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
        (["scan", "--out", "x", "--per-provider", "0"], "--per-provider: must be at least 1"),
        (["scan", "--out", "x", "--provider-rate", "0"], "--provider-rate: must be positive"),
        (["scan", "--out", "x", "--host-budget", "-5"], "--host-budget: must be positive"),
        (["scan", "--out", "x", "--greeting-timeout", "x"], "--greeting-timeout: not a number"),
        (["scan", "--out", "x", "--dns-concurrency", "0"], "--dns-concurrency: must be at least"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage(tmp_path: Path, args: list[str], needle: str) -> None:
    assert_usage_error(run(*args, cwd=tmp_path), needle)


def test_a_survey_that_does_not_identify_itself_is_warned(tmp_path: Path) -> None:
    """The default EHLO name identifies no one: said before anything is contacted (an unusable
    opt-out list then stops this survey before any lookup), but not for a testbed on loopback."""
    (tmp_path / "opt-out").write_text("not a name or network !\n")
    live = run("scan", "a.example", "--out", "o", "--opt-out", "opt-out", cwd=tmp_path)
    assert live.returncode == 2
    warning, error = live.stderr.strip().splitlines()
    assert warning.startswith("starttls-survey: warning: EHLO starttls-survey.invalid does not "
                              "identify you") and "--ehlo-name" in warning
    assert "opt-out" in error
    named = run("scan", "a.example", "--out", "o", "--opt-out", "opt-out", "--ehlo-name",
                "scanner.example.org", cwd=tmp_path)
    testbed = run("scan", "a.example", "--out", "o", "--opt-out", "opt-out", "--resolver",
                  "127.0.0.1:53", cwd=tmp_path)
    for proc in (named, testbed):
        assert_usage_error(proc, "opt-out")


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


# Everything under optout.example is on the opt-out list, and "bad name" is no domain: the
# survey reads the list, records it and contacts nobody.
TRANCO_LIKE = (b"1,one.optout.example\r\n2,bad name\r\n3,two.optout.example\r\n"
               b"4,three.optout.example\r\n")


def test_zipped_rank_domain_list_on_standard_input_with_top_and_resume(tmp_path: Path) -> None:
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text("optout.example\n")
    out = tmp_path / "out"
    scan = ["scan", "--domains", "-", "--out", str(out), "--opt-out", str(opt_out),
            "--resolver", "127.0.0.1:9", "--no-progress"]
    proc = run_with_stdin(zipped(TRANCO_LIKE), *scan, "--top", "3", "--list-id", "K2VWW")
    assert proc.returncode == 0, proc.stderr
    results = load_results(out)
    assert list(results.domains["rank"]) == [1, 2, 3]
    assert list(results.domains["dns_status"]) == ["opted_out", "invalid", "opted_out"]
    meta = json.loads((out / "meta.json").read_text())
    taken = b"1,one.optout.example\n2,bad name\n3,two.optout.example"
    assert {k: v for k, v in meta.items() if k.startswith("domain_list")} == {
        "domain_list": "<stdin>",
        "domain_list_sha256": hashlib.sha256(taken).hexdigest(),
        "domain_list_entries": 3,
        "domain_list_top": 3,
        "domain_list_id": "K2VWW",
        "domain_list_format": "rank,domain CSV without a header, zip member top-1m.csv",
    }
    # The same entries resume, whatever the file's compression or the way it comes in...
    gz = tmp_path / "top-1m.csv.gz"
    gz.write_bytes(gzip.compress(TRANCO_LIKE))
    with gz.open("rb") as redirected:
        proc = run_with_stdin(redirected, *scan, "--top", "3", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "meta.json").read_text())["runs"] == 2
    # ...and other entries do not: one more, or the whole file.
    for other in (["--top", "4"], []):
        proc = run_with_stdin(zipped(TRANCO_LIKE), *scan, *other, "--resume")
        assert_usage_error(proc, "--resume with a different domain list than the one started "
                                 "(started: <stdin> --top 3, SHA-256 ")


@pytest.mark.parametrize(("stdin", "args", "needle"), [
    (b"", [], "<stdin>: no domains in file"),
    (gzip.compress(b"# nothing but a comment\n", mtime=0), [], "<stdin>: no domains in file"),
    (zipped(TRANCO_LIKE, "a.csv", "b.csv"), [], "<stdin>: a zip archive of 2 files (a.csv, b.csv)"),
    (b"\x7fELF\x02\x01\x01\x00\x00", [], "<stdin>: binary file, not a domain list"),
    (b"name,provider\nx.example,y\n", [], "CSV has no 'domain' column (columns: name, "
                                           "provider)"),
    (TRANCO_LIKE, ["--top", "0"], "argument --top: must be at least 1, not 0"),
    (TRANCO_LIKE, ["--top", "ten"], "argument --top: not an integer"),
])
def test_bad_lists_on_standard_input(tmp_path: Path, stdin: bytes, args: list[str],
                                     needle: str) -> None:
    proc = run_with_stdin(stdin, "scan", "--domains", "-", "--out", str(tmp_path / "o"), *args)
    assert_usage_error(proc, needle)
    assert not (tmp_path / "o").exists()


def test_a_zip_of_several_files_redirected_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "lists.zip"
    f.write_bytes(zipped(TRANCO_LIKE, "a.csv", "b.csv", "c.csv", "d.csv"))
    with f.open("rb") as redirected:
        proc = run_with_stdin(redirected, "scan", "--domains", "-", "--out", str(tmp_path / "o"))
    assert_usage_error(proc, "a zip archive of 4 files (a.csv, b.csv, c.csv, …), not of one "
                             "domain list")
    proc = run("scan", "--domains", str(f), "--out", str(tmp_path / "o"))
    assert_usage_error(proc, f"{f}: a zip archive of 4 files")


def test_top_and_list_id_need_a_list_file(tmp_path: Path) -> None:
    for option in (["--top", "2"], ["--list-id", "K2VWW"]):
        proc = run("scan", "a.example", "--out", str(tmp_path / "o"), *option)
        assert_usage_error(proc, "--top and --list-id go with --domains FILE")


def test_gzipped_list_on_standard_input_scans_the_top_entries(
    cases_testbed: Testbed, tmp_path: Path
) -> None:
    # Ranks as the file gives them (not the order), and only the first three domains surveyed.
    ranked = [(rank * 10, name) for rank, name in cases_testbed.domains()]
    data = gzip.compress("".join(f"{rank},{name}\r\n" for rank, name in ranked).encode())
    proc = run_with_stdin(data, "scan", "--domains", "-", "--top", "3", "--out",
                          str(tmp_path / "o"), "--resolver", cases_testbed.resolver,
                          "--port", str(cases_testbed.smtp_port), "--timeout", "2",
                          "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = load_results(tmp_path / "o")
    assert list(zip(results.domains["rank"], results.domains["domain"], strict=True)) \
        == ranked[:3]
    expected = {d.name: d.expect_dns_status.value for d in cases_testbed.scenario.domains}
    assert dict(zip(results.domains["domain"], results.domains["dns_status"], strict=True)) \
        == {name: expected[name] for _, name in ranked[:3]}
    surveyed = {name for _, name in ranked[:3]}
    assert set(results.mx["domain"]) <= surveyed
    assert results.meta["domain_list_format"] == "rank,domain CSV without a header, gzip"
