"""Benchmark of the hospital-server source against a real sekmet-fhir on loopback.

For each size: load N synthetic stented patients (+10 % unrelated ones) into a fresh server, then fetch the
cohort by search (:func:`fetch_by_search`) and by Bulk Data (:func:`fetch_by_bulk`, system and Patient level),
printing the requests made, the wall time and the resources written. Needs the server venv
(``scripts/test.sh`` makes it; or ``FHIR_PTS_TEST_SERVER``). The server runs with inbound validation off so the
load is not dominated by pydantic.

    python benchmarks/bench_server.py [--sizes 1000 10000] [--workers 4] [--page-size 1000] [--batch 50]
    python benchmarks/bench_server.py --site-codes [--sizes 1000]

``--site-codes``: load a random synthetic cohort (``fhir-pts synth``, 4 noise resources per patient) in which about
half of the coded resources carry site-local codes, plus its ConceptMap; fetch it by search and Bulk with the
run's vocabulary (``with map``) and with the contract's codes alone (``no map``: what fetch did before the
vocabulary reached the server layer), and count the cohort patients each gives against the files door.
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
from sekmet_harness import SekmetServer, ServerInfo, server_python  # noqa: E402

from fhir_pts.sources.server.auth import SmartBackendAuth  # noqa: E402
from fhir_pts.sources.server.bulk import BulkStats, fetch_by_bulk  # noqa: E402
from fhir_pts.sources.server.http import check, make_session  # noqa: E402
from fhir_pts.sources.server.search import SearchStats, fetch_by_search  # noqa: E402
from fhir_pts.vocabulary import MapSource, Vocabulary  # noqa: E402


def count_lines(paths: list[Path]) -> int:
    """Resources written (lines of the NDJSON files)."""
    total = 0
    for p in paths:
        with p.open("rb") as f:
            total += sum(1 for _ in f)
    return total


def load(info: ServerInfo, resources: list[dict], chunk: int = 2000) -> tuple[float, int]:
    """PUT the resources into the server in transactions of ``chunk``; (seconds, transactions)."""
    keys = info.full_rs384
    admin = make_session(SmartBackendAuth(info.token_url, keys.client_id, keys.private_key,
                                          "system/*.read system/*.write"), timeout=(10, 600))
    t0 = time.perf_counter()
    for i in range(0, len(resources), chunk):
        body = orjson.dumps(transaction(resources[i : i + chunk]))
        check(admin.post(info.base_url, data=body, headers={"Content-Type": "application/fhir+json"}))
    return time.perf_counter() - t0, -(-len(resources) // chunk)


def timed_fetch(info: ServerInfo, mode: str, out: Path, args: argparse.Namespace,
                vocabulary: Vocabulary | None = None) -> tuple[list[Path], int, float]:
    """Fetch by ``mode`` (search, bulk-system, bulk-patient) with a fresh read-only session; (files, requests, s)."""
    reader = info.reader
    session = make_session(SmartBackendAuth(info.token_url, reader.client_id, reader.private_key, "system/*.rs"),
                           timeout=(10, 600), pool_size=max(8, 2 * args.workers))
    t0 = time.perf_counter()
    if mode == "search":
        paths = fetch_by_search(session, info.base_url, out, page_size=args.page_size, patients_per_request=args.batch,
                                workers=args.workers, stats=SearchStats(), vocabulary=vocabulary)
    else:
        paths = fetch_by_bulk(session, info.base_url, out, mode.split("-")[1], workers=args.workers,
                              stats=BulkStats(), poll_cap=1.0, vocabulary=vocabulary)
    return paths, session.requests_made, time.perf_counter() - t0


def run_size(n: int, args: argparse.Namespace) -> list[tuple[str, int, int, float, int, str]]:
    """Load n patients into a fresh server and time each fetch mode; rows of (mode, n, requests, s, res, ok)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, SekmetServer(server_python(), Path(tmp), validation="off") as info:
        resources = cohort_resources(n_patients=n, n_others=max(1, n // 10), prefix="b")
        expected = expected_keys(resources)
        seconds, transactions = load(info, resources)
        print(f"  loaded {len(resources)} resources for {n} patients in {seconds:.1f} s "
              f"({len(resources) / seconds:.0f} res/s)", flush=True)
        rows.append(("load (transactions)", n, transactions, seconds, len(resources), ""))
        for mode in args.modes:
            paths, requests_made, wall = timed_fetch(info, mode, Path(tmp) / f"raw-{mode}", args)
            written = count_lines(paths)
            ok = "same as loaded" if written == len(expected) else f"MISMATCH (expected {len(expected)})"
            rows.append((mode, n, requests_made, wall, written, ok))
            print(f"  {mode}: {requests_made} requests, {wall:.2f} s, {written} resources ({ok})", flush=True)
    return rows


def run_site_codes(n: int, args: argparse.Namespace) -> list[tuple[str, int, int, float, int, str]]:
    """The site-coded cohort: requests, seconds and cohort patients per mode, with and without the ConceptMap."""
    from fhir_pts.pipeline import load_cohort
    from fhir_pts.synth import random_cohort_resources
    from fhir_pts.synth.site_codes import SiteCoder
    from fhir_pts.synth.writer import write_bundle

    rows = []
    coder = SiteCoder()
    resources = list(coder.recode_all(random_cohort_resources(n, 5, noise_per_patient=4.0)))
    concept_map = coder.concept_map()
    vocabulary = Vocabulary.from_resources([(concept_map, MapSource("file", "bench"))])
    winners = {(r["resourceType"], r["id"]): r for r in resources}  # the synthetic versions increase in file order
    with tempfile.TemporaryDirectory() as tmp, SekmetServer(server_python(), Path(tmp), validation="off") as info:
        bundle = Path(tmp) / "cohort.json"
        write_bundle(iter(resources), bundle)
        expected = len(load_cohort([bundle], vocabulary=vocabulary))
        seconds, _ = load(info, list(winners.values()))
        print(f"  loaded {len(winners)} site-coded resources for {n} patients in {seconds:.1f} s; "
              f"files door: {expected} cohort patients", flush=True)
        for mode in args.modes:
            for label, vocab in (("with map", vocabulary), ("no map", Vocabulary())):
                out = Path(tmp) / f"raw-{mode}-{label.replace(' ', '-')}"
                paths, requests_made, wall = timed_fetch(info, mode, out, args, vocab)
                found = len(load_cohort(paths, vocabulary=vocabulary))
                ok = "same as files" if found == expected else f"{found} of {expected} cohort patients"
                rows.append((f"{mode} ({label})", n, requests_made, wall, count_lines(paths), ok))
                print(f"  {mode} ({label}): {requests_made} requests, {wall:.2f} s, {ok}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50, help="patients per search request")
    parser.add_argument("--site-codes", action="store_true", help="a site-coded cohort, with and without its map")
    parser.add_argument("--modes", nargs="+", default=["search", "bulk-system", "bulk-patient"],
                        choices=["search", "bulk-system", "bulk-patient"], help="fetch modes to time")
    args = parser.parse_args()
    if server_python() is None:
        print("no server venv: run scripts/test.sh once or set FHIR_PTS_TEST_SERVER", file=sys.stderr)
        return 2
    rows = []
    for n in args.sizes:
        print(f"{n} patients:", flush=True)
        rows += run_site_codes(n, args) if args.site_codes else run_size(n, args)
    print(f"\n{'mode':<20} {'patients':>8} {'requests':>9} {'seconds':>8} {'resources':>10}  check")
    for mode, n, requests_made, wall, written, ok in rows:
        print(f"{mode:<20} {n:>8} {requests_made:>9} {wall:>8.2f} {written:>10}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
