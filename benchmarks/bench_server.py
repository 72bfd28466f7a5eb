"""Benchmark of the hospital-server source against a real sekmet-fhir on loopback.

For each size: load N synthetic stented patients (+10 % unrelated ones) into a fresh server, then fetch the
cohort by search (:func:`fetch_by_search`) and by Bulk Data (:func:`fetch_by_bulk`, system and Patient level),
printing the requests made, the wall time and the resources written. Needs the server venv
(``scripts/test.sh`` makes it; or ``FHIR_PTS_TEST_SERVER``). The server runs with inbound validation off so the
load is not dominated by pydantic.

    python benchmarks/bench_server.py [--sizes 1000 10000] [--workers 4] [--page-size 1000] [--batch 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sources" / "server"))

from cohort_factory import cohort_resources, expected_keys, transaction  # noqa: E402
from sekmet_harness import SekmetServer, server_python  # noqa: E402

from fhir_pts.sources.server.auth import SmartBackendAuth  # noqa: E402
from fhir_pts.sources.server.bulk import BulkStats, fetch_by_bulk  # noqa: E402
from fhir_pts.sources.server.http import check, make_session  # noqa: E402
from fhir_pts.sources.server.search import SearchStats, fetch_by_search  # noqa: E402


def count_lines(paths: list[Path]) -> int:
    """Resources written (lines of the NDJSON files)."""
    total = 0
    for p in paths:
        with p.open("rb") as f:
            total += sum(1 for _ in f)
    return total


def run_size(n: int, args: argparse.Namespace) -> list[tuple[str, int, int, float, int, str]]:
    """Load n patients into a fresh server and time each fetch mode; rows of (mode, n, requests, s, res, ok)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, SekmetServer(server_python(), Path(tmp), validation="off") as info:
        keys = info.full_rs384
        admin = make_session(SmartBackendAuth(info.token_url, keys.client_id, keys.private_key,
                                              "system/*.read system/*.write"), timeout=(10, 600))
        resources = cohort_resources(n_patients=n, n_others=max(1, n // 10), prefix="b")
        expected = expected_keys(resources)
        t0 = time.perf_counter()
        chunk = 2000
        for i in range(0, len(resources), chunk):
            body = orjson.dumps(transaction(resources[i : i + chunk]))
            check(admin.post(info.base_url, data=body, headers={"Content-Type": "application/fhir+json"}))
        load = time.perf_counter() - t0
        print(f"  loaded {len(resources)} resources for {n} patients in {load:.1f} s "
              f"({len(resources) / load:.0f} res/s)", flush=True)
        rows.append(("load (transactions)", n, -(-len(resources) // chunk), load, len(resources), ""))
        reader = info.reader
        for mode in ("search", "bulk-system", "bulk-patient"):
            session = make_session(SmartBackendAuth(info.token_url, reader.client_id, reader.private_key,
                                                    "system/*.rs"), timeout=(10, 600),
                                   pool_size=max(8, 2 * args.workers))
            out = Path(tmp) / f"raw-{mode}"
            t0 = time.perf_counter()
            if mode == "search":
                paths = fetch_by_search(session, info.base_url, out, page_size=args.page_size,
                                        patients_per_request=args.batch, workers=args.workers, stats=SearchStats())
            else:
                paths = fetch_by_bulk(session, info.base_url, out, mode.split("-")[1], workers=args.workers,
                                      stats=BulkStats(), poll_cap=1.0)
            wall = time.perf_counter() - t0
            written = count_lines(paths)
            ok = "same as loaded" if written == len(expected) else f"MISMATCH (expected {len(expected)})"
            rows.append((mode, n, session.requests_made, wall, written, ok))
            print(f"  {mode}: {session.requests_made} requests, {wall:.2f} s, {written} resources ({ok})", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50, help="patients per search request")
    args = parser.parse_args()
    if server_python() is None:
        print("no server venv: run scripts/test.sh once or set FHIR_PTS_TEST_SERVER", file=sys.stderr)
        return 2
    rows = []
    for n in args.sizes:
        print(f"{n} patients:", flush=True)
        rows += run_size(n, args)
    print(f"\n{'mode':<20} {'patients':>8} {'requests':>9} {'seconds':>8} {'resources':>10}  check")
    for mode, n, requests_made, wall, written, ok in rows:
        print(f"{mode:<20} {n:>8} {requests_made:>9} {wall:>8.2f} {written:>10}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
