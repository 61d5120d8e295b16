"""Huiliu's processes keep pandas out when pyarrow and polars only probe for it
(deploy/pandas_probes.py): what a runner does to a batch (Avro columns encoded from Python values,
polars frames to Arrow and numpy) runs without loading it, and a plugin's own import still loads it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

WORK = """
import json, sys
{install}
import polars as pl
from schemas.batch_avro import BatchEncoder
schema = {{"type": "record", "name": "r", "fields": [
    {{"name": "id", "type": "long"}},
    {{"name": "op", "type": {{"type": "enum", "name": "op", "symbols": ["c", "u", "d"]}}}},
    {{"name": "name", "type": ["null", "string"]}}]}}
encoded = BatchEncoder(schema).encode([{{"id": i, "op": "c", "name": f"n{{i}}"}} for i in range(100)])
frame = pl.DataFrame({{"id": list(range(100))}})
frame.to_arrow(); frame["id"].to_numpy()
probed = "pandas" in sys.modules
import pandas  # a plugin's own import
print(json.dumps({{"encoded": len(encoded), "probed": probed, "own_import": pandas.__name__}}))
"""


def _run(install: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WORK.format(install=install)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("hook", [True, False], ids=["hook", "without"])
def test_pandas_is_loaded_only_by_an_import_of_its_own(hook):
    install = "from deploy.pandas_probes import skip_pandas_probes; skip_pandas_probes()" if hook else ""
    result = _run(install)
    assert result["encoded"] == 100 and result["own_import"] == "pandas"
    assert result["probed"] is (not hook)  # without the hook the same work loads pandas (what it saves)
