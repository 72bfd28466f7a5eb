"""Write a run's MeasureReports (and the Measures the server lacks) back to the hospital FHIR server.

One transaction Bundle. Each MeasureReport gets a stable ``identifier`` (system ``{base}/measure-report-id``,
value derived from the measure id, the period and a fingerprint of the inputs) and is a conditional create
(``ifNoneExist: identifier=...``), so running twice never duplicates a report. Measures are created only when no
Measure with their ``url`` exists; an existing one is left alone, or updated (``update_measures=True``) only with
``If-Match`` on the version read, never blindly. The summary says what was created and what was left alone.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import requests

from fhir_pts.codes import CANONICAL_BASE

from .http import ServerError, check

REPORT_ID_SYSTEM = f"{CANONICAL_BASE}/measure-report-id"
STRICT_JSON = {"Content-Type": "application/fhir+json", "Prefer": "handling=strict"}
_VOLATILE = {"id", "meta", "date", "text", "identifier"}


@dataclass
class WriteBackSummary:
    """What the write-back did, by ``Type/id`` on the server."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already there: left alone
    updated: list[str] = field(default_factory=list)
    identifiers: dict[str, str] = field(default_factory=dict)  # measure canonical -> report identifier value

    def render(self) -> str:
        """Human-readable lines (what a CLI prints)."""
        lines = [f"write-back: {len(self.created)} created, {len(self.updated)} updated, "
                 f"{len(self.unchanged)} already present (left alone)"]
        lines += [f"  created   {x}" for x in self.created]
        lines += [f"  updated   {x}" for x in self.updated]
        lines += [f"  unchanged {x}" for x in self.unchanged]
        return "\n".join(lines)


def fingerprint(report: dict) -> str:
    """A fingerprint of a MeasureReport's content without its volatile parts (id, meta, date, text,
    identifier): the same inputs give the same numbers, hence the same fingerprint."""
    stable = {k: v for k, v in report.items() if k not in _VOLATILE}
    return hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()


def report_identifier(report: dict, input_fingerprint: str | None = None) -> str:
    """The stable identifier value: ``<measure id>/<period start>--<period end>/<fingerprint[:20]>``."""
    measure = str(report.get("measure") or "").split("|")[0].rstrip("/").rsplit("/", 1)[-1]
    if not measure:
        raise ServerError("a MeasureReport without a measure cannot be written back")
    period = report.get("period") or {}
    fp = input_fingerprint or fingerprint(report)
    return f"{measure}/{period.get('start', '')}--{period.get('end', '')}/{fp[:20]}"


def _with_identifier(report: dict, input_fingerprint: str | None) -> tuple[dict, str]:
    report = copy.deepcopy(report)
    report.pop("id", None)
    report.pop("meta", None)
    idents = [i for i in report.get("identifier", []) or [] if i.get("system") == REPORT_ID_SYSTEM]
    if idents and idents[0].get("value"):
        value = str(idents[0]["value"])
    else:
        value = report_identifier(report, input_fingerprint)
        report["identifier"] = [*(report.get("identifier") or []), {"system": REPORT_ID_SYSTEM, "value": value}]
    return report, value


def _reports(bundle: dict) -> list[dict]:
    if bundle.get("resourceType") == "MeasureReport":
        return [bundle]
    if bundle.get("resourceType") != "Bundle":
        raise ServerError(f"write-back expects a Bundle of MeasureReports, got a {bundle.get('resourceType')!r}")
    reports = [e.get("resource") for e in bundle.get("entry", []) or []]
    wrong = [r.get("resourceType") for r in reports if not isinstance(r, dict) or r.get("resourceType") !=
             "MeasureReport"]
    if wrong:
        kinds = sorted(set(map(str, wrong)))
        raise ServerError(f"write-back refuses a Bundle holding non-MeasureReport entries: {kinds}")
    return reports  # type: ignore[return-value]


def _existing_measures(session: requests.Session, base_url: str, urls: Iterable[str]) -> dict[str, dict]:
    """Measures on the server by canonical url (following next links)."""
    urls = sorted(set(urls))
    found: dict[str, dict] = {}
    if not urls:
        return found
    next_url: str | None = f"{base_url}/Measure"
    params: dict[str, str] | None = {"url": ",".join(urls), "_count": "200"}
    while next_url:
        response = check(session.get(next_url, params=params, headers={"Prefer": "handling=strict"}), base_url,
                         "Measure")
        bundle = response.json()
        for entry in bundle.get("entry", []) or []:
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == "Measure" and resource.get("url") in urls:
                found[resource["url"]] = resource
        next_url = next((lk.get("url") for lk in bundle.get("link", []) if lk.get("relation") == "next"), None)
        params = None
    return found


def _measure_differs(ours: dict, theirs: dict) -> bool:
    return {k: v for k, v in ours.items() if k not in _VOLATILE} != {
        k: v for k, v in theirs.items() if k not in _VOLATILE
    }


def write_back(
    session: requests.Session,
    base_url: str,
    bundle: dict,
    measures: list[dict] | None = None,
    *,
    input_fingerprint: str | None = None,
    update_measures: bool = False,
) -> WriteBackSummary:
    """Write the MeasureReports of ``bundle`` (and the ``measures`` the server lacks) in ONE transaction.

    ``input_fingerprint`` (e.g. a hash of the input files) goes into each report's identifier; by default the
    report's own content is fingerprinted. Returns what was created, updated (Measures, If-Match only) and left
    alone. Raises :class:`~fhir_pts.sources.server.http.ServerError` subclasses naming what was refused.
    """
    base_url = base_url.rstrip("/")
    summary = WriteBackSummary()
    entries: list[dict] = []
    for report in _reports(bundle):
        resource, value = _with_identifier(report, input_fingerprint)
        summary.identifiers[str(resource.get("measure"))] = value
        entries.append({
            "fullUrl": f"urn:uuid:{hashlib.sha256(value.encode()).hexdigest()[:32]}",
            "resource": resource,
            "request": {"method": "POST", "url": "MeasureReport",
                        "ifNoneExist": f"identifier={REPORT_ID_SYSTEM}|{value}"},
        })
    measures = measures or []
    for m in measures:
        if m.get("resourceType") != "Measure" or not m.get("url"):
            raise ServerError("write-back: every Measure needs resourceType 'Measure' and a url")
    existing = _existing_measures(session, base_url, (m["url"] for m in measures))
    for m in measures:
        theirs = existing.get(m["url"])
        if theirs is None:
            ours = {k: v for k, v in m.items() if k not in ("id", "meta")}
            entries.append({"resource": ours, "request": {"method": "POST", "url": "Measure",
                                                          "ifNoneExist": f"url={m['url']}"}})
        elif update_measures and _measure_differs(m, theirs):
            ours = {**{k: v for k, v in m.items() if k != "meta"}, "id": theirs["id"]}
            version = (theirs.get("meta") or {}).get("versionId")
            if not version:
                raise ServerError(f"Measure/{theirs['id']} has no versionId: refusing an update without If-Match")
            entries.append({"resource": ours, "request": {"method": "PUT", "url": f"Measure/{theirs['id']}",
                                                          "ifMatch": f'W/"{version}"'}})
        else:
            summary.unchanged.append(f"Measure/{theirs['id']}")
    if not entries:
        return summary
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = session.post(base_url, data=orjson.dumps(transaction), headers=STRICT_JSON)
    check(response, base_url, "transaction (MeasureReport, Measure)")
    result = response.json()
    answers = result.get("entry", []) or []
    if result.get("type") != "transaction-response" or len(answers) != len(entries):
        raise ServerError(f"the server's transaction response has {len(answers)} entries for {len(entries)} sent")
    for sent, answer in zip(entries, answers, strict=True):
        status = str((answer.get("response") or {}).get("status", ""))
        location = str((answer.get("response") or {}).get("location") or "")
        rtype = sent["resource"]["resourceType"]
        body = answer.get("resource") or {}
        if location:
            ref = "/".join(location.split("/_history/")[0].rstrip("/").split("/")[-2:])
        else:
            ref = f"{rtype}/{body['id']}" if body.get("id") else rtype
        code = status.split(" ", 1)[0]
        if sent["request"]["method"] == "PUT":
            summary.updated.append(ref)
        elif code == "201":
            summary.created.append(ref)
        else:
            summary.unchanged.append(ref)
    return summary
