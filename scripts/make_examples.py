"""Regenerate examples/*.json: synthetic hook requests (no real patient data) for the README.

    .venv/bin/python scripts/make_examples.py
"""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

from cds_service.synthetic.population import generate_patient, make_hook_request

AS_OF = date(2026, 11, 26)
OUT = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    bundle = generate_patient(
        random.Random(42),  # noqa: S311 - synthetic data, not security
        AS_OF, "repeated_intolerance", index=1, patient_id="example-1",
    )
    requests = {
        "patient-view-repeated-intolerance.json": make_hook_request(
            bundle, "patient-view", hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
        ),
        "order-sign-repeated-intolerance.json": make_hook_request(
            bundle, "order-sign", hook_instance="0f3a1c8e-6b3e-4f7a-9a51-2c5d7e8b9f10"
        ),
    }
    for name, body in requests.items():
        (OUT / name).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
