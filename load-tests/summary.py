#!/usr/bin/env python3
"""Side-by-side tables (markdown) from the JSON figures `load-tests/run`
writes: `summary.py cluster DIR` or `summary.py idle DIR`.

Throughput "at equal p99" is the highest delivered rate among the steps
whose p99 stayed within LOAD_P99_MS (default 50 ms, the issue's target) and
that lost and duplicated nothing."""

import glob
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def ms(latency, key):
    return "—" if not latency else f"{latency[key]:.1f}"


def pct(value):
    return "—" if value is None else f"{value:.0f}"


def ratio(a, b):
    return "—" if not a or not b else f"{a / b:.2f}×"


def cluster(results):
    bound = float(os.environ.get("LOAD_P99_MS", "50"))
    steps = {}
    for path in sorted(glob.glob(os.path.join(results, "cluster-*.json"))):
        figures = load(path)
        steps.setdefault(figures["server"], []).append(figures)
    print("| server | offered msg/s | live conv. | delivered msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms "
          "| max ms | ack p99 ms | never acked | lost | dup | reconnects | RSS MiB (3 instances) "
          "| servers' CPU, % of a core | machine busy % | load avg |")
    print("| --- | " + "--- | " * 17)
    best = {}
    for server, runs in steps.items():
        runs.sort(key=lambda f: f["offered_per_second"])
        for f in runs:
            d = f.get("delivery_ms")
            ok = f["lost"] == 0 and f["duplicated"] == 0 and f["failed_clients"] == 0
            if ok and d and d["p99"] <= bound:
                best[server] = max(best.get(server, 0), f["delivered_per_second"])
            rss = f.get("rss_kib_after")
            print(f"| {server} | {f['offered_per_second']:.0f} | {f['conversations']} "
                  f"| {f['delivered_per_second']:.0f} "
                  f"| {ms(d, 'p50')} | {ms(d, 'p90')} | {ms(d, 'p99')} | {ms(d, 'p99_9')} "
                  f"| {ms(d, 'max')} | {ms(f.get('ack_ms'), 'p99')} | {f['sent'] - f['acked']} "
                  f"| {f['lost']} | {f['duplicated']} "
                  f"| {f['reconnects']} | {'—' if rss is None else f'{rss / 1024:.0f}'} "
                  f"| {pct(f.get('server_cpu_percent'))} | {pct(f.get('machine_busy_percent'))} "
                  f"| {f.get('load_average', '—')} |")
    print()
    top = {s: max(f["delivered_per_second"] for f in runs) for s, runs in steps.items()}
    ceilings = {}
    for path in glob.glob(os.path.join(results, "ceiling-*.json")):
        name = os.path.basename(path)[len("ceiling-"):-len(".json")]
        ceilings[name] = load(path)["per_second"]
    ours = [s for s in steps if s != "peer"]
    columns = ours + (["peer"] if "peer" in steps else [])
    ratios = [s for s in ours if "peer" in steps]
    print("| figure | " + " | ".join(columns) + "".join(f" | {s} / peer" for s in ratios) + " |")
    print("| --- | " + "--- | " * (len(columns) + len(ratios)))

    def row(label, values, fmt):
        cells = ["—" if values.get(s) is None else fmt(values[s]) for s in columns]
        cells += [ratio(values.get(s), values.get("peer")) for s in ratios]
        print(f"| {label} | " + " | ".join(cells) + " |")

    row(f"msg/s delivered with p99 ≤ {bound:.0f} ms, none lost", best, lambda v: f"{v:.0f}")
    row("most msg/s delivered, any p99", top, lambda v: f"{v:.0f}")
    for name, per_second in sorted(ceilings.items()):
        label = {"redis": "Redis PUBLISH/s", "pg": "PostgreSQL message INSERT/s"}[name.split("-")[0]]
        clients = name.split("-")[1]
        shares = {s: 100 * v / per_second for s, v in top.items() if per_second}
        cells = [f"{shares[s]:.0f} %" if s in shares else "—" for s in columns]
        print(f"| most delivered as a share of {label} ({clients} connections) = {per_second:.0f} | "
              + " | ".join(cells) + " |" + " |" * len(ratios))


def idle(results):
    c = load(os.path.join(results, "careline-idle.json"))
    p = load(os.path.join(results, "peer-idle.json"))
    print("| figure | Careline | peer | Careline / peer |")
    print("| --- | --- | --- | --- |")
    for key, label in [("kib_per_socket", "KiB per idle socket"),
                       ("cpu_percent_at_rest", "CPU at rest, % of a core"),
                       ("connect_seconds", "seconds to open them all")]:
        a, b = c.get(key), p.get(key)
        print(f"| {label} | {'—' if a is None else f'{a:.2f}'} | {'—' if b is None else f'{b:.2f}'} "
              f"| {ratio(a, b)} |")
    print(f"| sockets opened / failed / open after the hold | {c['opened']} / {c['failed']} / "
          f"{c['open_at_end']} | {p['opened']} / {p['failed']} / {p['open_at_end']} | |")


if __name__ == "__main__":
    {"cluster": cluster, "idle": idle}[sys.argv[1]](sys.argv[2])
