"""Import a large CSV roster and submit it to a real daemon: the path ``bridge send roster
FILE.csv --category pow`` takes.

    python bench/import_csv.py [--rows 100000] [--repeat 3] [--json] [--profile DIR]

Writes an N-row prisoner-of-war roster (synthetic: generated names, dates and numbers; no real
person) as CSV, starts two daemons on loopback (bridge.daemon.pair.make_pair), and times, for each
run:

- ``import``: read the CSV, convert every cell by the POW schema and check every row
  (JSON Schema, dates, DNA, withheld fields, duplicate ids) -- ``importers.import_document``;
- ``check``: the row checks alone, on the records already read (``categories.check_records``);
- ``submit``: hand the items to the sender's daemon over its Unix socket until it answers 202
  (the daemon checks the rows again, signs, chunks, seals and commits them durably);
- ``import+submit``: the two together, what a person waits for at the prompt.

- ``bridge send``: the command itself (``bridge send roster FILE --category pow --to beta``,
  a new process: its start, the rows counted, then read, converted and streamed to the daemon
  as they are read (their checks are the daemon's, made once), until the 202); its own CPU
  seconds and peak RSS (``os.wait4`` of that process alone), and ``bridge_send_cli_start_cpu``,
  the CPU seconds of ``bridge send --help`` (the command's start: its imports);
- ``reference``: reading the same file with ``csv.DictReader`` and encoding every row with
  msgpack, in this process, in the same run (the floor of reading and encoding it).

Every figure is the median of ``--repeat`` runs (each run submits a new document). On a shared
machine the wall clock is noisy: ``*_cpu_seconds`` are the processor seconds (user and system)
of the same steps, the sender's daemon for ``submit`` and the command plus the daemon for
``bridge send``. ``--profile DIR`` samples the sender's daemon with py-spy during ``bridge
send`` and prints its top lines. Targets for 100,000 rows: ``bridge send`` at most 2 x the
reference; import+submit under 3 s; the row checks alone well under 1 s.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
from e2e import cpu_seconds, print_profile, spy

from bridge.client import BridgeClient
from bridge.daemon.pair import Node, make_pair
from bridge.records.categories import check_records, roster_schema
from bridge.records.importers import import_document

SURNAMES = ("Avenor", "Belcastro", "Corvin", "Dunmere", "Elstrand", "Falkrey", "Gorran",
            "Halvik", "Istrel", "Jorvant")
FIRST = ("Ari", "Bren", "Cael", "Dario", "Emin", "Fenn", "Goran", "Ilya", "Jonas", "Kem")
RANKS = ("private", "corporal", "sergeant", "lieutenant")
PLACES = ("Northvale", "Eastmere", "Westford", "Southbrook", "Riverside")
HEADER = ("id", "surname", "first_names", "rank", "date_of_birth", "service_number",
          "place_of_birth", "power_depended_on", "capture_date", "capture_place",
          "seriously_ill", "seriously_wounded", "age_band", "consent_to_repatriation")
TARGET_SECONDS = 3.0
CHECK_TARGET_SECONDS = 1.0
SEND_OVER_REFERENCE = 2.0


def reference(path: Path) -> float:
    """Read the file with ``csv.DictReader`` and encode every row with msgpack."""
    gc.collect()
    t0 = time.perf_counter()
    pack = msgpack.Packer().pack
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            pack(row)
    return time.perf_counter() - t0


def send_command(node: Node, path: Path, doc_id: str, profile: Path | None
                 ) -> tuple[float, float, float, float]:
    """``bridge send roster FILE --category pow --to beta``, a process of its own: its wall
    time, its own CPU seconds, its peak RSS (MB) and the sender's daemon's CPU seconds."""
    spied = spy(node, profile) if profile is not None else None
    cpu_daemon = cpu_seconds(node)
    said = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "--home", str(node.home.path),
                             "send", "roster", str(path), "--category", "pow", "--to", "beta",
                             "--id", doc_id],
                            stdout=subprocess.DEVNULL, stderr=said)
    # Its own CPU seconds (wait4: this child's alone) and peak RSS (VmHWM, polled while it
    # runs: ru_maxrss would count this process's memory, which the child shares until exec).
    peak = 0.0
    while True:
        peak = max(peak, peak_rss_mb(proc.pid))
        pid, status, use = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    said.seek(0)
    failed = said.read().decode(errors="replace")
    said.close()
    if proc.returncode != 0:
        raise RuntimeError(f"bridge send failed: {failed}")
    cpu_daemon = cpu_seconds(node) - cpu_daemon
    if spied is not None:
        spied.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
        spied.wait(60)
    return wall, use.ru_utime + use.ru_stime, peak, cpu_daemon


def peak_rss_mb(pid: int) -> float:
    """The command's peak resident memory so far (VmHWM), in MB; 0 before its exec (its
    memory is still this process's then) and once it has gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"\0send\0" not in f.read():
                return 0.0
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cli_start_cpu(node: Node, repeat: int = 3) -> float:
    """CPU seconds of ``bridge send --help``: the command's start (its imports) alone."""
    spent = []
    for _ in range(repeat):
        proc = subprocess.Popen([sys.executable, "-m", "bridge", "--home",
                                 str(node.home.path), "send", "--help"],
                                stdout=subprocess.DEVNULL)
        _, _, use = os.wait4(proc.pid, 0)
        proc.returncode = 0
        spent.append(use.ru_utime + use.ru_stime)
    return statistics.median(spent)


def write_roster(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(rows):
            year = 1970 + i % 35
            born = f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}"
            # Some birth dates are known only to the month or the year, as in practice.
            if i % 50 == 0:
                born = str(year)
            elif i % 10 == 0:
                born = born[:7]
            out.writerow((
                f"POW-{i:07d}", SURNAMES[i % 10], f"{FIRST[i % 7]} {FIRST[(i // 7) % 10]}",
                RANKS[i % 4], born,
                f"AL-{i * 7919 % 10_000_000:07d}", PLACES[i % 5], "Alpha",
                f"2026-{1 + i % 9:02d}-{1 + i % 28:02d}", f"Sector {i % 40} (synthetic)",
                "yes" if i % 97 == 0 else "no", "yes" if i % 89 == 0 else "no",
                "18-25" if 2026 - year <= 25 else "", "yes"))


def one_run(node: Node, path: Path, rows: int, doc_id: str) -> dict[str, float]:
    client = node.client
    gc.collect()
    t0 = time.perf_counter()
    sub = import_document(str(path), doc_type="roster", category="pow")
    t_import = time.perf_counter() - t0
    assert len(sub.items) == rows
    gc.collect()
    t0 = time.perf_counter()
    assert check_records(roster_schema("pow"), sub.items).ok
    t_check = time.perf_counter() - t0
    gc.collect()
    cpu_daemon = cpu_seconds(node)
    t0 = time.perf_counter()
    answer = client.submit_document("roster", "beta", sub.items, meta=sub.meta, id=doc_id)
    t_submit = time.perf_counter() - t0
    cpu_daemon = cpu_seconds(node) - cpu_daemon
    assert answer["items"] == rows, answer
    return {"import": t_import, "check": t_check, "submit": t_submit,
            "import+submit": t_import + t_submit, "submit_daemon_cpu": cpu_daemon}


def wait_delivered(client: BridgeClient, doc_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.document(doc_id)["state"] not in ("queued", "sending"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{doc_id} was not delivered within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the sender's daemon with py-spy during bridge send")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bridge-import-") as tmp:
        root = Path(tmp)
        path = root / "roster-pow.csv"
        write_roster(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        a, b = make_pair(root)
        a.start()
        b.start()
        try:
            for n in range(args.repeat):
                figures = one_run(a, path, args.rows, f"R-BENCH-{n}")
                # Let the previous document's delivery to the peer finish first: it competes
                # for the same processor cores and would be counted against the next submit.
                wait_delivered(a.client, f"R-BENCH-{n}")
                profile = args.profile / f"profile-send-{n}.txt" if args.profile else None
                if profile is not None:
                    profile.parent.mkdir(parents=True, exist_ok=True)
                wall, cpu_cli, rss_cli, cpu_daemon = send_command(a, path, f"R-SEND-{n}",
                                                                  profile)
                cpu0 = time.process_time()
                figures |= {"bridge_send": wall, "bridge_send_cli_cpu": cpu_cli,
                            "bridge_send_cli_start_cpu": cli_start_cpu(a),
                            "bridge_send_cli_peak_rss_mb": rss_cli,
                            "bridge_send_daemon_cpu": cpu_daemon, "reference": reference(path),
                            "reference_cpu": time.process_time() - cpu0}
                for key, value in figures.items():
                    runs.setdefault(key, []).append(value)
                wait_delivered(a.client, f"R-SEND-{n}")
        finally:
            a.stop()
            b.stop()
    result = {"rows": args.rows, "csv_mb": round(size_mb, 1), "repeat": args.repeat,
              **{k if k.endswith("_mb") else f"{k}_seconds": round(statistics.median(v), 3)
                 for k, v in runs.items()}}
    result["send_over_reference"] = round(result["bridge_send_seconds"]
                                          / result["reference_seconds"], 2)
    result["send_cpu_over_reference_cpu"] = round(
        (result["bridge_send_cli_cpu_seconds"] + result["bridge_send_daemon_cpu_seconds"])
        / result["reference_cpu_seconds"], 2)
    if args.profile:
        print_profile(args.profile / "profile-send-0.txt", "sender during bridge send")
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    total, check = result["import+submit_seconds"], result["check_seconds"]
    over = result["send_over_reference"]
    print(f"bridge send / reference (DictReader + msgpack, same run): {over:.2f} x; target "
          f"<= {SEND_OVER_REFERENCE:g} x: {'PASS' if over <= SEND_OVER_REFERENCE else 'MISS'}")
    print(f"target import+submit < {TARGET_SECONDS:g} s: "
          f"{'PASS' if total < TARGET_SECONDS else 'MISS'}; "
          f"row checks < {CHECK_TARGET_SECONDS:g} s: "
          f"{'PASS' if check < CHECK_TARGET_SECONDS else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
