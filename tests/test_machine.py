"""The machine's load before timing: measured, recorded, warned about; never acted on."""

from __future__ import annotations

import subprocess
import sys
import time

from harness.machine import Load, busy_warning, measure_load


def test_load_is_measured_from_the_cpu_counters() -> None:
    load = measure_load(0.2)
    assert load.cpus >= 1 and 0 <= load.busy_cores <= load.cpus and load.free_cores == load.cpus - load.busy_cores
    spinner = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
    try:
        time.sleep(0.3)
        busy = measure_load(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    # a process spinning on one core (and whatever else runs) is at least most of a core busy
    assert busy.busy_cores >= min(0.7, busy.cpus), busy
    cols = busy.as_columns()
    assert set(cols) == {"cpus", "busy_cores", "free_cores", "load_1m", "omp_wait_policy"}


def test_warning_only_when_the_threads_will_not_find_free_cores() -> None:
    assert busy_warning(Load(2, 0.2, 0.3, 0.5), threads=1) is None
    assert busy_warning(Load(2, 0.9, 1.0, 0.5), threads=1) is None  # one core free for one thread
    two = busy_warning(Load(2, 1.0, 1.3, 0.5), threads=2)
    assert two and "hardware.threads=2" in two and "hardware.threads=1" in two and "not comparable" in two
    one = busy_warning(Load(2, 2.0, 2.5, 0.5), threads=1)
    assert one and "2.0 of 2 CPU(s)" in one and "wait until the other work ends" in one
