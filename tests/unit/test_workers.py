"""The one lazily started pool class, behind both the EXIF parsers and the measuring pool."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from qc_tool.config import load
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, quantise_gps
from qc_tool.domain.exif_reader import read_exif_block
from qc_tool.domain.sparse import run_program
from qc_tool.services.scan.parsing import LazyParser, summarize_many, workers_setting
from qc_tool.services.workers import (
    INLINE_THREADS,
    MeasuringPool,
    WorkerPool,
    check_workers_setting,
)


def test_no_process_starts_until_the_pool_is_first_used_and_a_closed_pool_starts_again() -> None:
    pool = WorkerPool(1, "qc_tool.domain.exif")
    assert not pool.started
    try:
        executor, width = pool.executor()
        assert isinstance(executor, ProcessPoolExecutor) and width == 1
        assert executor.submit(os.getpid).result(timeout=60) != os.getpid()
        assert pool.executor()[0] is executor  # one pool, however often it is asked for
        pool.close()
        assert not pool.started
        again, _ = pool.executor()
        assert again is not executor and again.submit(os.getpid).result(timeout=60) != os.getpid()
    finally:
        pool.close()


def test_a_pool_of_no_processes_is_threads_of_this_process() -> None:
    pool = MeasuringPool(0)
    try:
        executor, width = pool.executor()
        assert isinstance(executor, ThreadPoolExecutor) and width == INLINE_THREADS
        assert executor.submit(os.getpid).result(timeout=60) == os.getpid()
    finally:
        pool.close()
    pool.close()  # closing twice is harmless


def test_the_parser_starts_its_processes_at_the_first_batch_and_parses_as_inline() -> None:
    data = build_jpeg(
        ImageSpec(taken=datetime(2024, 5, 14, 9, 30), gps=quantise_gps(52.37, 4.89, 40.0)),
        encode_body(160, 120, seed=3),
    )
    block = run_program(read_exif_block(len(data)), lambda off, n: data[off : off + n])
    parser = LazyParser(1)
    try:
        assert not parser.pool.started
        parsed = parser.submit([block]).result(timeout=60)
        assert parser.pool.started
    finally:
        parser.close()
    assert parsed == summarize_many([block])


@pytest.mark.parametrize(
    ("raw", "parse", "check"),
    [
        ("", max(1, (os.cpu_count() or 2) - 1), os.cpu_count() or 2),
        ("  ", max(1, (os.cpu_count() or 2) - 1), os.cpu_count() or 2),
        ("0", 0, 0),
        (" 3 ", 3, 3),
    ],
)
def test_each_setting_keeps_its_own_default(raw: str, parse: int, check: int) -> None:
    settings = load({"QC_PARSE_WORKERS": raw, "QC_CHECK_WORKERS": raw})
    # QC_PARSE_WORKERS: one core left for the network
    assert workers_setting(settings.parse_workers) == parse
    # QC_CHECK_WORKERS: every core measures
    assert check_workers_setting(settings.check_workers) == check


def test_a_negative_worker_count_is_refused() -> None:
    with pytest.raises(ValueError, match="QC_CHECK_WORKERS='-1' is not a valid whole number of 0"):
        load({"QC_CHECK_WORKERS": "-1"})


def test_worker_processes_of_a_script_do_not_run_the_script_again(tmp_path: Path) -> None:
    """The ``qc-tool`` script imports the whole CLI; its measuring processes need none of it."""
    (tmp_path / "script_only.py").write_text("")  # imported by the script alone
    (tmp_path / "probe.py").write_text(
        "import sys\n\ndef imported(name):\n    return name in sys.modules\n"
    )
    script = tmp_path / "main_script.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import script_only\n"
        "from probe import imported\n"
        "from qc_tool.services.workers import WorkerPool\n"
        "if __name__ == '__main__':\n"
        "    pool = WorkerPool(1, 'probe')\n"
        "    executor, _ = pool.executor()\n"
        "    print(executor.submit(imported, 'script_only').result(timeout=60))\n"
        "    pool.close()\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False", done.stderr
