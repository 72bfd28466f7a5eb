"""Both engines on the same export: resources/s, driver and executor memory (``docs/scale.md``).

Each engine runs in a fresh process (``load_cohort`` on the export, then nothing else), so start-up costs are
counted: the Spark figure includes starting the JVM and the SparkSession. While it runs, a thread samples the
resident memory of the process tree every 0.2 s:

- ``driver``: this Python process (the local engine's reading happens here and in its worker processes);
- ``jvm``: the Spark JVM (driver + executors in ``local[*]`` mode);
- ``workers``: the sum over the Python worker processes (the local engine's reading processes, or Spark's Python
  executors running the adapters).

Usage (exports from ``../shared/bench/make_export.py``, kept outside the repository)::

    .venv/bin/python benchmarks/bench_engines.py /work/benchdata/10k [--engines local,spark] [--json F]

The machine is shared: quote figures from one run side by side, with the load average printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmd:
            return cmd.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Sampler(threading.Thread):
    """Peak resident memory (MB) of this process, its JVM and its Python workers, sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"driver": 0.0, "jvm": 0.0, "workers": 0.0}
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            jvm = workers = 0.0
            todo = _children(me)
            while todo:
                pid = todo.pop()
                todo.extend(_children(pid))
                rss = _rss_mb(pid)
                if "java" in _cmdline(pid).split(" ", 1)[0]:
                    jvm += rss
                else:
                    workers += rss
            self.peak["driver"] = max(self.peak["driver"], _rss_mb(me))
            self.peak["jvm"] = max(self.peak["jvm"], jvm)
            self.peak["workers"] = max(self.peak["workers"], workers)
            self.stop.wait(0.2)


def _child(export: str, engine: str, master: str) -> None:
    sampler = Sampler()
    sampler.start()
    started = time.perf_counter()
    from fhir_pts.engines import make_engine

    chosen = make_engine(engine, workers=2, spark_master=master)
    cohort = chosen.load_cohort([export])
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    read = cohort.flow.get("resources_read", 0)
    print(json.dumps({
        "engine": engine if engine == "local" else f"spark {master}",
        "seconds": round(wall, 2),
        "resources": read,
        "resources_per_s": round(read / wall),
        "cohort_rows": len(cohort),
        "problems": len(cohort.problems),
        "peak_rss_mb": {k: round(v) for k, v in sampler.peak.items()},
    }))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="a Bulk Data export folder (NDJSON)")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.export, args.child, args.spark_master)
        return 0
    results = []
    for engine in args.engines.split(","):
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, args.export, "--child", engine, "--spark-master", args.spark_master],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["load_avg_before"] = round(load, 1)
        results.append(result)
        print(json.dumps(result))
    same = len({(r["cohort_rows"], r["resources"], r["problems"]) for r in results}) == 1
    print(f"same cohort rows, resources and problems from every engine: {same}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
