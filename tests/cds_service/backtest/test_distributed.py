"""A real ``distributed`` cluster: a scheduler and two worker processes on loopback, reached with
``--scheduler tcp://127.0.0.1:PORT``, give the same report as the in-process run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from cds_service.backtest.run import main, run_backtest
from cds_service.settings import Settings
from cds_service.synthetic.population import write_population
from tests.cds_service.backtest.conftest import AS_OF, EVERY_ARCHETYPE


@pytest.mark.slow
def test_scheduler_with_two_worker_processes_gives_the_same_numbers_as_the_local_run(
    default_settings: Settings,
    dask_client: Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "ndjson"
    manifest = json.loads(
        write_population(directory, 24, 3, AS_OF, "ndjson", mix=EVERY_ARCHETYPE).read_text()
    )
    common = [str(directory), "--as-of", AS_OF.isoformat(), "--format", "json",
              "--partition-mb", "1"]
    # The default: a local cluster of worker processes started for the run.
    assert main([*common, "--workers", "2"]) == 0
    local_out, local_err = capsys.readouterr()
    assert "Dask dashboard at http://127.0.0.1:" in local_err
    assert ", 2 workers, peak worker memory" in local_err
    local = json.loads(local_out)
    in_process = run_backtest(directory, default_settings, AS_OF, dask_client).document
    assert local == in_process
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        code = main([*common, "--quiet", "--scheduler", address, "--output", str(tmp_path / "out")])
        with Client(address) as client:
            workers = client.scheduler_info()["workers"]
    out = capsys.readouterr().out
    assert code == 0
    assert len(workers) == 2
    remote = json.loads(out)
    assert remote == local
    flagged = {pid: row["flagged"] for pid, row in remote["patterns"].items()}
    assert flagged == manifest["expected_flagged"]
    # Both worker processes wrote findings files (one per partition).
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) >= 2
