"""The aggregate types a site shares live with the analyses that build them; pooling re-exports them."""

from __future__ import annotations

import numpy as np

from fhir_pts.analyses import aggregates
from fhir_pts.pooling import aggregates as pooling_aggregates


def test_pooling_re_exports_the_same_objects() -> None:
    for name in aggregates.__all__:
        assert getattr(pooling_aggregates, name) is getattr(aggregates, name), name
    assert set(aggregates.__all__) < set(pooling_aggregates.__all__)
    assert {"merge", "MergeError"} <= set(pooling_aggregates.__all__) - set(aggregates.__all__)


def test_km_table_round_trips_to_durations_and_events() -> None:
    table = aggregates.km_table(
        "km", [3.0, 1.0, 3.0, 2.0, 1.0], [True, False, False, True, True], patients=6, excluded=1
    )
    assert (table.times, table.events, table.censored) == ((1.0, 2.0, 3.0), (1, 1, 1), (1, 0, 1))
    assert (table.n, table.patients, table.excluded) == (5, 6, 1)
    durations, event_observed = table.durations()
    np.testing.assert_array_equal(durations, [1.0, 1.0, 2.0, 3.0, 3.0])
    assert sorted(zip(durations.tolist(), event_observed.tolist(), strict=True)) == [
        (1.0, False),
        (1.0, True),
        (2.0, True),
        (3.0, False),
        (3.0, True),
    ]
