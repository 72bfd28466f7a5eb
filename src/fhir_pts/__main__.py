"""``python -m fhir_pts``: the same as ``fhir-pts``."""

import sys

from fhir_pts.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
