"""The steady-state section: the throughput configurations on a long input.

The short throughput runs (``--records``, 200,000 by default) end a few seconds in, while
the JVM under Kafka Streams is still compiling its hot paths; Python engines have no JIT, so
a short run favours them. Here every configuration of the raw loop, streamer and Kafka
Streams (both cache settings) reads ``--steady-records`` (2,000,000 by default) records.
Besides the whole span, each run reports the span after its first ``--steady-warm-up``
records (a fifth of the run by default): ``steady_records_per_s`` and ``steady_cpu_s``
(CPU seconds over those ``steady_records``). Quix Streams is left out: at its rate a round
would take longer than the rest of the suite.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import preproduce
from benchmarks.rounds import configurations, digest, key, ratios

if TYPE_CHECKING:
    from benchmarks.suite import Suite

ENGINES = ("streamer", "kstreams", "kstreams-cached")


def steady(suite: Suite) -> None:
    n = suite.o.steady_records
    warm_up = suite.o.steady_warm_up if suite.o.steady_warm_up is not None else n // 5
    if not 0 < warm_up < n:
        msg = f"--steady-warm-up must be between 0 and --steady-records ({n:,}), not {warm_up}"
        raise ValueError(msg)
    source = suite.topic("bench-steady")
    suite.say(f"pre-producing {n:,} transactions to {source} ...")
    started = time.perf_counter()
    preproduce(suite.bootstrap, source, n).flush(10)
    suite.say(f"  done in {time.perf_counter() - started:.1f} s")
    configs = [c for c in configurations(ENGINES) if suite.enabled(c[0])]
    runs: dict[str, list[dict[str, Any]]] = {key(*c): [] for c in configs}
    for round_ in range(suite.o.steady_runs):
        for engine, workload, guarantee in configs:
            result = suite.run_throughput(engine, workload, guarantee, source, n, warm_up=warm_up)
            runs[key(engine, workload, guarantee)].append(result)
            per_record = result["steady_cpu_s"] / result["steady_records"] * 1e6
            suite.say(
                f"  round {round_ + 1}: {engine:<15} {workload:<15} {guarantee:<13} "
                f"{result['records_per_s']:>9,.0f} rec/s, after warm-up "
                f"{result['steady_records_per_s']:>9,.0f} rec/s, {per_record:.1f} µs CPU/record"
            )
    suite.results["steady"] = {
        "records": n,
        "warm_up": warm_up,
        "rows": {name: digest(rs) for name, rs in runs.items()},
        "ratios": ratios(runs, "steady_records_per_s"),
    }
