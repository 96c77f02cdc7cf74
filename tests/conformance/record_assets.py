"""Record what Airflow 3.3 makes of assets: the URI each `Asset(...)` normalises to (or the error it
raises), and whether each asset condition holds for each set of updated assets (the scheduler's own
`AssetEvaluator` over the serialized condition). Run it with Airflow's Python (its own virtualenv, never
an airstep dependency):

    AIRFLOW_HOME=... /path/to/airflow-venv/bin/python tests/conformance/record_assets.py

It writes airflow_assets.json beside it; tests/unit/test_assets.py holds airstep to it.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

FIXTURE = Path(__file__).with_name("airflow_assets.json")

ASSETS = [
    {"name": "orders"},
    {"uri": "s3://Bucket/raw/orders/"},
    {"uri": "S3://bucket/raw/orders#part"},
    {"uri": "postgres://db:5432/sales?b=2&a=1"},
    {"uri": "file:///data/out.csv"},
    {"uri": "x-custom://Whatever/#frag"},
    {"name": "report", "uri": "s3://reports/daily/"},
    {"uri": "https://user:secret@host/path/"},
    {"uri": "airflow://reserved"},
    {"name": "self"},
    {"name": "   "},
    {"name": ""},
]
NAMES = ["a", "b", "c", "d"]


def conditions(rng: random.Random, depth: int = 0) -> object:
    """A random condition: an asset name, or ["all"|"any", [parts]]."""
    if depth >= 2 or rng.random() < 0.35:
        return rng.choice(NAMES)
    return [rng.choice(["all", "any"]), [conditions(rng, depth + 1) for _ in range(rng.randint(1, 3))]]


def main() -> None:
    from airflow.assets.evaluation import AssetEvaluator
    from airflow.sdk import Asset, AssetAll, AssetAny
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
    from airflow.serialization.encoders import ensure_serialized_asset

    uris = []
    for arguments in ASSETS:
        try:
            asset = Asset(**arguments)
            uris.append({"arguments": arguments, "name": asset.name, "uri": asset.uri})
        except (ValueError, TypeError) as exc:
            uris.append({"arguments": arguments, "error": str(exc)})

    def build(condition: object) -> object:
        if isinstance(condition, str):
            return Asset(condition)
        kind, parts = condition
        return (AssetAll if kind == "all" else AssetAny)(*(build(p) for p in parts))

    evaluator = AssetEvaluator(None)  # no session: nothing here is a reference or an alias
    rng = random.Random(3)
    cases = []
    for _ in range(60):
        condition = conditions(rng)
        serialized = ensure_serialized_asset(build(condition))
        for size in range(len(NAMES) + 1):
            for updated in itertools.combinations(NAMES, size):
                statuses = {SerializedAssetUniqueKey(n, n): n in updated for n in NAMES}
                cases.append(
                    {"condition": condition, "updated": list(updated), "holds": evaluator.run(serialized, statuses)}
                )
    FIXTURE.write_text(json.dumps({"uris": uris, "conditions": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
