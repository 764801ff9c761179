"""The refusal of a 1,000,000-row batch: time and peak memory of `anjian advance --file`, beside an
anchor measured in the same run (Python's csv module reading the same file, row by row).

Before the limits, a 1,000,000-row `advance --file` ran 269 s, peaked at 12.5 GB and printed 4.1 GB of
refusals. The target (issue 12): the refusal takes ≤ 10 s and ≤ 300 MB.

    python benchmarks/limits.py [--rows 1000000] [--at-limit 50000] [--db URL]

Against a fresh database (`anjian init`, the built-in 承德 registry) each case runs the real CLI in a
subprocess; its wall time is measured around it and its peak RSS is the child's own (os.wait4), so
no case's figure includes another's. The cases:

- `names`: 1,000,000 rows naming townships by their full names (≈ 28 MB): over batch_max_bytes,
  refused by its size (a stat, before the file is opened);
- `codes`: 1,000,000 rows by code (`130827102,start`, under 16 MiB): within the bytes, refused by
  its rows, counted while streaming and stopped at batch_max_rows + 1;
- `at-limit`: batch_max_rows (50,000) rows of unknown townships: read and resolved, every row a
  problem; the terminal gets the first 50 and a count (its output size is printed too).

A last anchor, `anjian advance --help`, is the CLI's start-up alone (Python and its imports).
Prints a table, writes benchmarks/results/limits.json, and exits 1 if a 1,000,000-row refusal missed
the target or a case ended with another exit code than expected.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "limits.json"
TARGET_SECONDS, TARGET_MB = 10.0, 300.0
ANCHOR = "import csv, sys\nn = 0\nwith open(sys.argv[1], newline='', encoding='utf-8') as fh:\n" \
         "    for row in csv.reader(fh):\n        n += 1\nprint(n - 1)\n"


@dataclass
class Run:
    case: str
    what: str
    rows: int
    file_mb: float
    seconds: float
    peak_mb: float
    exit_code: int
    output_bytes: int
    first_line: str


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, bytes]:
    """Wall seconds, the child's peak RSS in MB, its exit code and its output (stdout + stderr)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        return took, usage.ru_maxrss / 1024, proc.returncode, out.read()


def anjian(*args: str) -> list[str]:
    """The real `anjian` command of this Python's environment (its console script)."""
    script = Path(sys.executable).parent / "anjian"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys\nfrom anjian.workflow.cli import main\nsys.argv[0] = 'anjian'\nmain()", *args]


def townships(env: dict[str, str]) -> list[tuple[str, str]]:
    """(code, name as officials write it: county then township, e.g. 宽城满族自治县峪耳崖镇) of the
    townships of the fresh database."""
    r = subprocess.run(anjian("units", "--format", "json"), env=env, capture_output=True, text=True, check=True)
    units = json.loads(r.stdout)
    names = {u["code"]: u["name"] for u in units}
    return [(u["code"], names.get(u["parent"], "") + u["name"]) for u in units if u["level"] == "township"]


def write_rows(path: Path, rows: int, cell) -> float:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("unit,trigger\n")
        for i in range(rows):
            fh.write(f"{cell(i)},start\n")
    return path.stat().st_size / 2**20


def run_case(case: str, what: str, rows: int, path: Path, env: dict[str, str], expected: int) -> list[Run]:
    took, peak, code, output = measure(anjian("advance", "--file", str(path)), env)
    first = output.decode("utf-8", "replace").splitlines()[0][:150] if output else ""
    mb = round(path.stat().st_size / 2**20, 1)
    out = [Run(case, what, rows, mb, round(took, 2), round(peak, 1), code, len(output), first)]
    a_took, a_peak, a_code, a_out = measure([sys.executable, "-c", ANCHOR, str(path)], env)
    out.append(Run(case, "anchor: csv.reader reads it all", rows, mb, round(a_took, 2), round(a_peak, 1), a_code,
                   len(a_out), a_out.decode().strip()))
    if code != expected:
        print(f"!! {case}: exit {code}, expected {expected}:\n{output.decode('utf-8', 'replace')[:2000]}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--at-limit", type=int, default=50_000, help="rows of the at-limit case (unknown townships)")
    parser.add_argument("--db", help="a database URL (default: an SQLite file in a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="anjian-limits-") as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_")}
        env |= {"ANJIAN_HOME": str(folder / "home"), "ANJIAN_DB": args.db or f"sqlite:///{folder / 'anjian.db'}"}
        subprocess.run(anjian("init"), env=env, check=True, capture_output=True)
        towns = townships(env)
        names, codes, unknown = folder / "names.csv", folder / "codes.csv", folder / "unknown.csv"
        write_rows(names, args.rows, lambda i: towns[i % len(towns)][1])
        write_rows(codes, args.rows, lambda i: towns[i % len(towns)][0])
        write_rows(unknown, args.at_limit, lambda i: f"无此乡镇{i:06d}")
        took, peak, code, _ = measure(anjian("advance", "--help"), env)
        runs = [Run("floor", "anchor: anjian advance --help (start-up)", 0, 0.0, round(took, 2), round(peak, 1), code,
                    0, ""),
                *run_case("names", "advance --file: refused by its size", args.rows, names, env, 2),
                *run_case("codes", "advance --file: refused by its rows", args.rows, codes, env, 2),
                *run_case("at-limit", f"advance --file: {args.at_limit:,} problems, 50 shown", args.at_limit, unknown,
                          env, 2)]
    print(f"{'case':<9} {'what':<44} {'rows':>9} {'file MB':>8} {'seconds':>8} {'peak MB':>8} {'exit':>4} "
          f"{'out B':>7}  first line")
    for r in runs:
        print(f"{r.case:<9} {r.what:<44} {r.rows:>9,} {r.file_mb:>8} {r.seconds:>8} {r.peak_mb:>8} {r.exit_code:>4} "
              f"{r.output_bytes:>7}  {r.first_line}")
    big = [r for r in runs if r.case in ("names", "codes") and not r.what.startswith("anchor")]
    ok = all(r.seconds <= TARGET_SECONDS and r.peak_mb <= TARGET_MB and r.exit_code == 2 for r in big)
    ok = ok and all(r.exit_code == 2 for r in runs if r.case == "at-limit" and not r.what.startswith("anchor"))
    print(f"target for the {args.rows:,}-row refusals: ≤ {TARGET_SECONDS:g} s and ≤ {TARGET_MB:g} MB — "
          + ("met" if ok else "MISSED"))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                   "target": {"seconds": TARGET_SECONDS, "peak_mb": TARGET_MB}, "met": ok,
                                   "runs": [asdict(r) for r in runs]}, ensure_ascii=False, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
