"""Figures for the file and stream sources: CSV rows/s into Kafka, XML import memory, log tail rate.

Run: .venv/bin/python tests/benchmarks/bench_files.py [--csv-rows 500000] [--xml-mb 1024] [--tail-seconds 10]
     [--bootstrap HOST:PORT --registry URL]   (default: starts its own broker + registry, ports 45281/45292)
Each phase runs in its own process so its peak RSS (VmHWM) is its own. End-to-end means
file -> parse -> type -> Avro envelope -> broker ack -> offsets stored (SourceRuntime).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.profiling import peak_rss_mb, profiled  # noqa: E402

PORT_BASE = 45200  # registry 45281, broker 45292


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _runtime(task, args, tmp):
    from connectors.runtime import SourceRuntime
    from schemas.serde import WireCodec

    return SourceRuntime(
        task, bootstrap=args.bootstrap, codec=WireCodec(args.registry), control_db_url=f"sqlite:///{tmp}/control.db"
    )


def _file_task(tmp, name, pattern, fmt, columns, batch):
    from connectors.files.source import FileSourceConfig, FileSourceTask

    return FileSourceTask(
        FileSourceConfig(
            name=name,
            system="bench",
            table=name + str(int(time.time())),
            settle_seconds=0,
            batch_size=batch,
            store={"root": str(tmp), "pattern": pattern},
            format=fmt,
            columns=columns,
            mode="once",
            control_db_url=f"sqlite:///{tmp}/control.db",
        )
    )


def phase_csv(args, tmp) -> dict:
    path = Path(tmp) / "people.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,name,citizen_id,division,amount,phone\n")
        for i in range(args.csv_rows):
            f.write(f"{i},姓名{i % 997},37010219900101{i % 10000:04d},370102,{i % 1000}.25,1380000{i % 10000:04d}\n")
    import csv

    t0 = time.perf_counter()
    with open(path, encoding="utf-8", newline="") as f:
        raw_rate = sum(1 for _ in csv.reader(f)) / (time.perf_counter() - t0)  # the machine's speed today
    cols = [
        {"name": "id", "type": "bigint", "key": True},
        {"name": "name"},
        {"name": "citizen_id"},
        {"name": "division"},
        {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
        {"name": "phone"},
    ]
    task = _file_task(tmp, "csvparse", "*.csv", {"kind": "csv"}, cols, 20000)
    task.start({})
    t0, n = time.perf_counter(), 0
    while (b := task.poll()).size:
        n += b.size
    parse_rate = n / (time.perf_counter() - t0)
    task.close()
    task = _file_task(tmp, "csvkafka", "*.csv", {"kind": "csv"}, cols, 20000)
    rt = _runtime(task, args, tmp)
    t0 = time.perf_counter()
    n = profiled(rt.drain, os.environ.get("BENCH_PROFILE"))  # BENCH_PROFILE=<file>: where the time goes
    e2e = n / (time.perf_counter() - t0)
    task.close()
    return {
        "rows": n,
        "baseline_bare_csv_reader_rows_per_s": round(raw_rate),
        "parse_type_rows_per_s": round(parse_rate),
        "end_to_end_rows_per_s": round(e2e),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }


def _write_xml(path: Path, mb: int) -> None:
    target = mb * 2**20
    rec = (
        '<p:person id="{i}"><p:name>姓名{i}</p:name><p:citizen>370102199001011234</p:citizen>'
        '<p:addr><p:city>济南</p:city><p:street>经十路{i}号</p:street></p:addr><p:note>{pad}</p:note></p:person>\n'
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<p:export xmlns:p="urn:bench"><p:people>\n')
        i, size, pad = 0, 0, "x" * 120
        while size < target:
            chunk = "".join(rec.format(i=i + k, pad=pad) for k in range(1000))
            f.write(chunk)
            size += len(chunk.encode())
            i += 1000
        f.write("</p:people></p:export>\n")


XML_FMT = {"kind": "xml", "record_path": "/p:export/p:people/p:person", "namespaces": {"p": "urn:bench"}}


def phase_xml(args, tmp) -> dict:
    path = Path(tmp) / "big.xml"
    _write_xml(path, args.xml_mb)
    fmt = {"kind": "xml", "record_path": "/p:export/p:people/p:person", "namespaces": {"p": "urn:bench"}}
    task = _file_task(tmp, "xml", "*.xml", fmt, [], 5000)  # the file connector's default batch
    rt = _runtime(task, args, tmp)
    rt.start()
    samples, t0, n = [], time.perf_counter(), 0
    while (k := rt.run_once()) or not task.finished:
        n += k
        if n // 200_000 != (n - k) // 200_000:
            samples.append(round(_rss_mb()))
    dt = time.perf_counter() - t0
    task.close()
    return {
        "file_mb": round(path.stat().st_size / 2**20),
        "records": n,
        "seconds": round(dt, 1),
        "records_per_s": round(n / dt),
        "rss_mb_every_200k_records": samples,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def phase_xmlmem(args, tmp) -> dict:
    """Parse + type + build events of a large XML file (no broker): memory must stay flat."""
    path = Path(tmp) / "huge.xml"
    _write_xml(path, args.xml_mem_mb)
    task = _file_task(tmp, "xmlmem", "*.xml", XML_FMT, [], 20000)
    task.start({})
    samples, t0, n = [], time.perf_counter(), 0
    while (b := task.poll()).size:
        n += b.size
        if n % 500_000 < b.size:
            samples.append(round(_rss_mb()))
    dt = time.perf_counter() - t0
    task.close()
    return {
        "file_mb": round(path.stat().st_size / 2**20),
        "records": n,
        "seconds": round(dt, 1),
        "records_per_s": round(n / dt),
        "rss_mb_every_500k_records": samples,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def phase_tail(args, tmp) -> dict:
    from connectors.streams.tail import TailSourceConfig, TailSourceTask

    path = Path(tmp) / "app.log"
    path.write_text("")
    rate, seconds, written = args.tail_rate, args.tail_seconds, [0]
    line = "2024-01-01 12:00:00.000 INFO  [worker-7] c.e.Service - handled request id={} in 3 ms\n"

    def writer():
        step, start = rate // 100, time.perf_counter()
        with open(path, "a") as f:
            for tick in range(seconds * 100):
                f.write("".join(line.format(written[0] + k) for k in range(step)))
                f.flush()
                written[0] += step
                time.sleep(max(0.0, start + (tick + 1) / 100 - time.perf_counter()))

    # Read side alone (no broker): how fast the tailer turns written lines into events.
    pre = Path(tmp) / "pre.log"
    with open(pre, "w") as f:
        f.write("".join(line.format(i) for i in range(rate * 2)))
    only = TailSourceTask(TailSourceConfig(name="pre", system="bench", paths=[str(pre)], batch_size=20000))
    only.start({})
    t0, n = time.perf_counter(), 0
    while (b := only.poll()).events:
        n += len(b.events)
    read_only = n / (time.perf_counter() - t0)
    only.close()

    task = TailSourceTask(
        TailSourceConfig(
            name="tail", system="bench", table=f"tail{int(time.time())}", paths=[str(path)], batch_size=20000
        )
    )
    rt = _runtime(task, args, tmp)
    rt.start()
    w = threading.Thread(target=writer)
    t0, read, max_lag = time.perf_counter(), 0, 0
    w.start()
    while w.is_alive() or read < written[0]:
        read += rt.run_once()
        max_lag = max(max_lag, written[0] - read)
        if time.perf_counter() - t0 > seconds * 5:
            break
    dt = time.perf_counter() - t0
    task.close()
    return {
        "target_lines_per_s": rate,
        "tail_read_only_lines_per_s": round(read_only),
        "lines_written": written[0],
        "lines_into_kafka": read,
        "seconds": round(dt, 1),
        "achieved_lines_per_s": round(read / dt),
        "max_lag_lines": max_lag,
        "kept_up": read == written[0] and dt < seconds * 1.2,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--phase", choices=["csv", "xml", "xmlmem", "tail"])
    p.add_argument("--xml-mem-mb", type=int, default=1024, help="size of the parse-only (no broker) XML file")
    p.add_argument("--csv-rows", type=int, default=500_000)
    p.add_argument("--xml-mb", type=int, default=1024)
    p.add_argument("--tail-seconds", type=int, default=10)
    p.add_argument("--tail-rate", type=int, default=50_000)
    p.add_argument("--bootstrap")
    p.add_argument("--registry")
    p.add_argument("--skip", nargs="*", default=[])
    args = p.parse_args()
    if args.phase:
        with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
            print(
                json.dumps(
                    {"csv": phase_csv, "xml": phase_xml, "xmlmem": phase_xmlmem, "tail": phase_tail}[args.phase](
                        args, tmp
                    )
                )
            )
        return 0
    stack = None
    if not args.bootstrap:
        from deploy.settings import Settings
        from deploy.stack import Stack

        state = tempfile.mkdtemp(prefix="bench-files-stack-")
        settings = Settings(
            state_dir=state,
            kafka_bootstrap=f"127.0.0.1:{PORT_BASE + 92}",
            schema_registry_url=f"http://127.0.0.1:{PORT_BASE + 81}",
            clickhouse_url=f"clickhouse://default:@127.0.0.1:{PORT_BASE}/default",
            clickhouse_http_port=PORT_BASE + 23,
            api_port=PORT_BASE + 10,
        )
        stack = Stack(settings)
        stack.up(progress=False, only=["broker", "registry"])
        args.bootstrap, args.registry = settings.kafka_bootstrap, settings.schema_registry_url
    try:
        for phase in ("csv", "xml", "xmlmem", "tail"):
            if phase in args.skip:
                continue
            cmd = [
                sys.executable,
                __file__,
                "--phase",
                phase,
                "--bootstrap",
                args.bootstrap,
                "--registry",
                args.registry,
                "--csv-rows",
                str(args.csv_rows),
                "--xml-mb",
                str(args.xml_mb),
                "--xml-mem-mb",
                str(args.xml_mem_mb),
                "--tail-seconds",
                str(args.tail_seconds),
                "--tail-rate",
                str(args.tail_rate),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            result = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else out.stderr[-2000:]
            print(f"{phase}: {result}", flush=True)
    finally:
        if stack is not None:
            stack.down(only=["broker", "registry"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
