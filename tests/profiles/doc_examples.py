"""The JSON examples of docs/profiles.md, read for the tests of the page (tests/profiles/test_docs.py) and of the
input profiles (tests/conformance/test_inputs.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "profiles.md"


def doc_examples() -> dict[str, dict[str, Any]]:
    """``"<type>/<id>"`` -> resource, for every JSON block of the page (skips the test when the page is missing)."""
    if not DOC.exists():
        pytest.skip("docs/profiles.md is not in this checkout")
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), flags=re.S)
    resources = [json.loads(block) for block in blocks]
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}
