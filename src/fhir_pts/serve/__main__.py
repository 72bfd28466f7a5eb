"""``python -m fhir_pts.serve``."""

import logging
import sys

from fhir_pts.serve.command import serve_main

if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(serve_main())
