"""The shareable sufficient statistics in ``measure-reports.json``: FHIR extensions, both directions.

Two project extensions (defined in ``profiles/input/fsh/Pooling.fsh``, documented in ``docs/pooling.md``):

- :data:`EXT_AGGREGATE` on ``MeasureReport.group``: one per aggregate of :mod:`fhir_pts.pooling.aggregates`
  (``name``, ``kind``, and the fields of that kind; a suppressed field is left out and named in ``masked``);
- :data:`EXT_POOLING_CONTEXT` on ``MeasureReport``: what must agree for pooling (the analysis' parameters and
  the assessment windows, as canonical JSON), the fhir-pts version, the minimum cell count applied and
  whether value distributions were shared.

:func:`aggregate_extension` writes one aggregate, :func:`read_aggregate` reads it back (the round trip is exact:
decimals are written with Python's shortest round-trip representation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_pts.analyses import aggregates as agg
from fhir_pts.codes import EXTENSION_BASE
from fhir_pts.disclosure import MIN_CELL_COUNT
from fhir_pts.pooling.suppression import suppress

#: One sufficient statistic (complex; on ``MeasureReport.group``; ``StructureDefinition-aggregate``).
EXT_AGGREGATE = f"{EXTENSION_BASE}/aggregate"
#: What sites must agree on to be pooled (complex; on ``MeasureReport``; ``StructureDefinition-pooling-context``).
EXT_POOLING_CONTEXT = f"{EXTENSION_BASE}/pooling-context"


@dataclass(frozen=True)
class SharingPolicy:
    """How a site shares its aggregates: the minimum cell count (0/1: everything exact) and whether the value
    distributions (needed for pooled medians and quartiles) leave the site."""

    min_cell_count: int = MIN_CELL_COUNT
    share_distributions: bool = False


def _dec(x: float) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2.0**53 else x


def _s(url: str, key: str, value: Any) -> dict[str, Any]:
    return {"url": url, key: value}


def _opt(parts: list[dict[str, Any]], masked: list[str], url: str, key: str, value: Any) -> None:
    if value is None:
        masked.append(url)
    elif key == "valueDecimal":
        parts.append(_s(url, key, _dec(value)))
    else:
        parts.append(_s(url, key, value))


def aggregate_extension(aggregate: agg.Aggregate) -> dict[str, Any]:
    """The ``aggregate`` extension of one (already suppressed) aggregate."""
    a = aggregate
    parts: list[dict[str, Any]] = [_s("name", "valueString", a.name), _s("kind", "valueCode", a.kind)]
    masked: list[str] = []
    unit = getattr(a, "unit", None)
    if unit:
        parts.append(_s("unit", "valueCode", unit))
    for role, stat in dict(getattr(a, "yields", {}) or {}).items():
        parts.append(_s("yields", "valueString", f"{role}={stat}"))
    if isinstance(a, agg.Count):
        _opt(parts, masked, "count", "valueInteger", a.value)
        _opt(parts, masked, "n", "valueInteger", a.n)
    elif isinstance(a, agg.Proportion):
        _opt(parts, masked, "numerator", "valueInteger", a.numerator)
        _opt(parts, masked, "denominator", "valueInteger", a.denominator)
    elif isinstance(a, agg.Moments):
        _opt(parts, masked, "n", "valueInteger", a.n)
        _opt(parts, masked, "sum", "valueDecimal", a.total)
        _opt(parts, masked, "sumOfSquares", "valueDecimal", a.total_sq)
        if a.n:  # an empty variable has no minimum or maximum: nothing masked
            _opt(parts, masked, "min", "valueDecimal", a.minimum)
            _opt(parts, masked, "max", "valueDecimal", a.maximum)
    elif isinstance(a, agg.KmTable):
        _opt(parts, masked, "patients", "valueInteger", a.patients)
        _opt(parts, masked, "excluded", "valueInteger", a.excluded)
        parts.append(_s("reverse", "valueBoolean", a.reverse))
        parts.append(_s("coarsened", "valueBoolean", a.coarsened))
        if a.times is None or a.events is None or a.censored is None:
            masked.append("row")
        else:
            for t, d, c in zip(a.times, a.events, a.censored, strict=True):
                row = [_s("time", "valueDecimal", _dec(t)), _s("events", "valueInteger", d)]
                row.append(_s("censored", "valueInteger", c))
                parts.append({"url": "row", "extension": row})
    elif isinstance(a, agg.Distribution):
        _opt(parts, masked, "n", "valueInteger", a.n)
        parts.append(_s("valuesShared", "valueBoolean", a.values is not None))
        parts.extend(_s("value", "valueDecimal", _dec(v)) for v in a.values or ())
    elif isinstance(a, agg.SignedRank):
        for s in a.strata:
            sub: list[dict[str, Any]] = []
            for url, key, val in (
                ("pairs", "valueInteger", s.pairs),
                ("nonzero", "valueInteger", s.nonzero),
                ("v", "valueDecimal", s.v),
                ("tieCorrection", "valueDecimal", s.tie_correction),
            ):
                if val is not None:
                    sub.append(_s(url, key, _dec(val) if key == "valueDecimal" else val))
            if len(sub) < 4:
                masked.append("stratum")
                sub.append(_s("masked", "valueBoolean", True))
            parts.append({"url": "stratum", "extension": sub})
    elif isinstance(a, agg.CrossProducts):
        parts.append(_s("formula", "valueString", a.formula))
        parts.extend(_s("term", "valueString", t) for t in a.terms)
        _opt(parts, masked, "n", "valueInteger", a.n)
        if a.xtx is None or a.xty is None or a.yty is None or a.y_total is None:
            masked.extend(["xtx", "xty", "yty", "sumY"])
        else:
            parts.extend(_s("xtx", "valueDecimal", _dec(v)) for v in a.xtx)
            parts.extend(_s("xty", "valueDecimal", _dec(v)) for v in a.xty)
            parts.append(_s("yty", "valueDecimal", _dec(a.yty)))
            parts.append(_s("sumY", "valueDecimal", _dec(a.y_total)))
    else:  # pragma: no cover
        raise TypeError(f"unknown aggregate {a!r}")
    parts.extend(_s("masked", "valueString", m) for m in dict.fromkeys(masked))
    return {"url": EXT_AGGREGATE, "extension": parts}


def aggregate_extensions(aggregates: Sequence[agg.Aggregate], policy: SharingPolicy) -> list[dict[str, Any]]:
    """The extensions of a result's aggregates as the site shares them (distributions only when opted in)."""
    out = []
    for a in aggregates:
        if isinstance(a, agg.Distribution) and not policy.share_distributions:
            a = agg.Distribution(name=a.name, n=a.n, values=None, unit=a.unit, yields=a.yields)
        out.append(aggregate_extension(suppress(a, policy.min_cell_count)))
    return out


# ------------------------------------------------------------------------------------------------- reading


class AggregateFormatError(ValueError):
    """An ``aggregate`` extension that does not follow its definition (names what is wrong)."""


def _values(ext: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for sub in ext.get("extension", []) or []:
        url = sub.get("url")
        if "extension" in sub:
            out.setdefault(url, []).append(_values(sub))
        else:
            vals = [v for k, v in sub.items() if k.startswith("value")]
            out.setdefault(url, []).append(vals[0] if vals else None)
    return out


def _one(v: Mapping[str, list[Any]], key: str, default: Any = None) -> Any:
    vals = v.get(key)
    return vals[0] if vals else default


def _int(v: Mapping[str, list[Any]], key: str) -> int | None:
    x = _one(v, key)
    return None if x is None else int(x)


def _float(v: Mapping[str, list[Any]], key: str) -> float | None:
    x = _one(v, key)
    return None if x is None else float(x)


def read_aggregate(ext: Mapping[str, Any]) -> agg.Aggregate:
    """The aggregate an ``aggregate`` extension holds (the inverse of :func:`aggregate_extension`)."""
    v = _values(ext)
    name, kind = _one(v, "name"), _one(v, "kind")
    if not name or not kind:
        raise AggregateFormatError("aggregate extension without name or kind")
    unit = _one(v, "unit")
    yields: dict[str, str] = {}
    for text in v.get("yields", []):
        role, _, stat = str(text).partition("=")
        yields[role] = stat
    masked = set(v.get("masked", []))
    try:
        if kind == "count":
            return agg.Count(name=name, value=_int(v, "count"), n=_int(v, "n"))
        if kind == "proportion":
            return agg.Proportion(name=name, numerator=_int(v, "numerator"), denominator=_int(v, "denominator"))
        if kind == "moments":
            return agg.Moments(
                name=name,
                n=_int(v, "n"),
                total=_float(v, "sum"),
                total_sq=_float(v, "sumOfSquares"),
                minimum=_float(v, "min"),
                maximum=_float(v, "max"),
                unit=unit,
                yields=yields,
            )
        if kind == "km-table":
            rows = v.get("row", [])
            shown = "row" not in masked
            return agg.KmTable(
                name=name,
                times=tuple(float(_one(r, "time")) for r in rows) if shown else None,
                events=tuple(int(_one(r, "events")) for r in rows) if shown else None,
                censored=tuple(int(_one(r, "censored")) for r in rows) if shown else None,
                patients=_int(v, "patients"),
                excluded=_int(v, "excluded"),
                reverse=bool(_one(v, "reverse", False)),
                coarsened=bool(_one(v, "coarsened", False)),
                yields=yields,
            )
        if kind == "distribution":
            shared = bool(_one(v, "valuesShared", False))
            values = tuple(float(x) for x in v.get("value", [])) if shared else None
            return agg.Distribution(name=name, n=_int(v, "n"), values=values, unit=unit, yields=yields)
        if kind == "signed-rank":
            strata = tuple(
                agg.SignedRankStratum(
                    pairs=_int(s, "pairs"),
                    nonzero=_int(s, "nonzero"),
                    v=_float(s, "v"),
                    tie_correction=_float(s, "tieCorrection"),
                )
                for s in v.get("stratum", [])
            )
            return agg.SignedRank(name=name, strata=strata, yields=yields)
        if kind == "cross-products":
            terms = tuple(str(t) for t in v.get("term", []))
            has = "xtx" not in masked
            return agg.CrossProducts(
                name=name,
                terms=terms,
                n=_int(v, "n"),
                xtx=tuple(float(x) for x in v.get("xtx", [])) if has else None,
                xty=tuple(float(x) for x in v.get("xty", [])) if has else None,
                yty=_float(v, "yty") if has else None,
                y_total=_float(v, "sumY") if has else None,
                formula=str(_one(v, "formula", "")),
            )
    except (TypeError, ValueError) as exc:
        raise AggregateFormatError(f"aggregate {name!r} ({kind}): {exc}") from exc
    raise AggregateFormatError(f"aggregate {name!r}: unknown kind {kind!r}")


# ------------------------------------------------------------------------------------------ pooling context


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces (tuples as lists): equal settings, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=list)


def pooling_context_extension(
    parameters: Mapping[str, Any], windows: Mapping[str, Any], software_version: str, policy: SharingPolicy
) -> dict[str, Any]:
    """The ``pooling-context`` extension of one site's MeasureReport."""
    parts = [
        _s("parameters", "valueString", canonical_json(dict(parameters))),
        _s("windows", "valueString", canonical_json(dict(windows))),
        _s("softwareVersion", "valueString", software_version),
        _s("minCellCount", "valueInteger", int(policy.min_cell_count)),
        _s("distributionsShared", "valueBoolean", bool(policy.share_distributions)),
    ]
    return {"url": EXT_POOLING_CONTEXT, "extension": parts}


@dataclass(frozen=True)
class PoolingContext:
    """The ``pooling-context`` of a report, read back (``parameters`` and ``windows`` as canonical JSON)."""

    parameters: str
    windows: str
    software_version: str
    min_cell_count: int
    distributions_shared: bool


def read_pooling_context(report: Mapping[str, Any]) -> PoolingContext | None:
    for ext in report.get("extension", []) or []:
        if ext.get("url") == EXT_POOLING_CONTEXT:
            v = _values(ext)
            return PoolingContext(
                parameters=str(_one(v, "parameters", "{}")),
                windows=str(_one(v, "windows", "{}")),
                software_version=str(_one(v, "softwareVersion", "")),
                min_cell_count=int(_one(v, "minCellCount", 0)),
                distributions_shared=bool(_one(v, "distributionsShared", False)),
            )
    return None
