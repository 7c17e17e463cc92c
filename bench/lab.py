"""The workspace at 10,000 records: how long a reviewer waits between a decision and the
next record, and how long the ranking takes to retrain.

Real titles and abstracts (the SYNERGY reviews and the co-production corpora of
../shared/data, perturbed for scale as bench/scale.py does) are deduplicated and screened
by the stage functions, then `cmosynth lab`'s app is served by uvicorn on 127.0.0.1 and a
scripted reviewer decides records over HTTP, as the browser's script does (a POST that
writes the decision and answers with the next record's card). Decisions follow a fixed
rule (include when the title names collaboration or participation), so that the model has
both classes to learn from.

Prints:
- decision -> next record shown: median, 95th centile and worst, over the decisions
  (target: under 300 ms at 10,000 records);
- retraining: the topic's model retrained on the decisions (in the background; median and
  worst), and the same retrain run in the foreground for comparison;
- the baseline: what the reviewer would wait for without the workspace's queue, i.e. the
  screen stage rerun on the decision file (`screen_topic`, features computed afresh).

Run: `python bench/lab.py [--records 10000] [--decisions 150]`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

ON_TOPIC = ("co-produc", "coproduc", "participat", "collaborat", "partnership", "involvement",
            "engagement", "stakeholder", "community")


def centile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=150)
    args = parser.parse_args()

    from scale import DATA, base_records, write_import

    if not (DATA / "benchmarks" / "screening").exists():
        print(f"skipped: {DATA} is absent (the bench reads real abstracts from it)")
        return 0
    import uvicorn

    from cmosynth.config import load_topic
    from cmosynth.dedup import dedup_files
    from cmosynth.screen.run import screen_topic
    from cmosynth.web.app import create_app
    from cmosynth.web.workspace import Workspace
    from lab_review import write_topic

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        os.chdir(folder)
        records_csv = folder / "records.csv"
        write_import(records_csv, base_records(), args.records)
        topic_path = write_topic(folder, "labbench")
        topic = load_topic(topic_path)
        outputs = folder / "outputs"
        dedup_files([records_csv], outputs / "labbench" / "dedup" / "records.jsonl",
                    review_pairs=outputs / "labbench" / "dedup" / "pairs_to_review.csv")
        screen_topic(topic, outputs)

        workspace = Workspace(topic_path, outputs, "bench")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(workspace, port=port, csrf="bench"),
                                               host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        session = requests.Session()
        started = time.perf_counter()
        assert session.get(f"{url}/screen").ok
        opening = time.perf_counter() - started
        queue = workspace.queue()
        kept = len(queue.records)

        latencies, retrains = [], []
        record_id = queue.next_record()["record_id"]
        for _ in range(args.decisions):
            title = workspace.record(record_id)["title"].lower()
            decision = "include" if any(w in title for w in ON_TOPIC) else "exclude"
            started = time.perf_counter()
            answer = session.post(f"{url}/screen/decide", json={
                "record_id": record_id, "decision": decision, "reason": ""},
                headers={"X-CSRF-Token": "bench"})
            latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            record_id = answer.json()["record_id"]
            if queue.retrained_seconds is not None:
                retrains.append(queue.retrained_seconds)
        server.should_exit = True
        workspace.close()

        queue._version += 1              # force one more retrain, timed in the foreground
        started = time.perf_counter()
        queue.retrain()
        foreground = time.perf_counter() - started

        decisions_file = workspace.my_file("decisions")
        started = time.perf_counter()
        screen_topic(load_topic(topic_path), outputs)
        rerun = time.perf_counter() - started
        progress = queue.progress()

    ms = 1000
    print(f"cmosynth lab at {args.records:,} records ({kept:,} after deduplication), "
          f"{args.decisions} decisions over HTTP on 127.0.0.1 ({progress.included} included)")
    print(f"  opening the screen view (features, cold-start ranking): {opening:.2f} s")
    print(f"  decision -> next record shown: median {statistics.median(latencies) * ms:.0f} ms, "
          f"95th centile {centile(latencies, 0.95) * ms:.0f} ms, worst {max(latencies) * ms:.0f} ms"
          f"  (target < 300 ms)")
    if retrains:
        print(f"  retraining in the background ({queue.model.name}): median "
              f"{statistics.median(retrains) * ms:.0f} ms, worst {max(retrains) * ms:.0f} ms; "
              f"in the foreground after {progress.decided} decisions: {foreground * ms:.0f} ms")
    print(f"  baseline, the screen stage rerun on the decisions file ({decisions_file.name}): "
          f"{rerun:.2f} s per decision")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
