"""What the data contract fixes, written out here on purpose (not imported from :mod:`fhir_pts.codes`), so that a
measure the code dropped or renamed fails the tests instead of vanishing from both sides."""

#: The measure ids of contract §4, in its order.
CONTRACT_MEASURES: tuple[str, ...] = (
    "cohort",
    "technical-success",
    "major-complications",
    "imaging-follow-up",
    "primary-patency",
    "primary-assisted-patency",
    "secondary-patency",
    "villalta",
    "civiq20",
    "villalta-gain-regression",
    "civiq20-gain-regression",
)
