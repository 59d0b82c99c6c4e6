#!/usr/bin/env python3
"""Collect criterion/redis-benchmark results of one run, or summarise all runs.

    bench_collect.py CRITERION_DIR RUN_DIR   # copy one run's medians into RUN_DIR/results.json
    bench_collect.py --summary OUT_DIR       # markdown tables: medians over runs of each
                                             # figure and of each per-run ratio
    bench_collect.py --pool-summary OUT_DIR  # the same for benches/pool.rs (RUN_DIR/pool.json)
"""
import glob
import json
import os
import statistics
import sys


def collect(crit, run_dir):
    res = {"parse": {}, "rt": {}, "redis_benchmark": {}}
    for f in glob.glob(os.path.join(crit, "*", "*", "new", "estimates.json")):
        parts = f.split(os.sep)
        group, bench = parts[-4], parts[-3]
        ns = json.load(open(f))["median"]["point_estimate"]
        if group.startswith("parse_"):
            res["parse"].setdefault(group[len("parse_"):], {})[bench] = ns
        elif group.startswith("rt_"):
            res["rt"].setdefault(group[len("rt_"):], {})[bench] = ns
    for name, key in (("parser-corpora.json", "corpora"),
                      ("redis-benchmark.json", "redis_benchmark"),
                      ("rt-interleaved.json", "interleaved")):
        p = os.path.join(crit, name)
        if os.path.exists(p):
            res[key] = json.load(open(p))
    try:
        res["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        pass
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


def summary(out):
    runs = []
    for d in sorted(glob.glob(os.path.join(out, "run-*"))):
        r = json.load(open(os.path.join(d, "results.json")))
        cg = os.path.join(d, "callgrind.json")
        r["callgrind"] = json.load(open(cg)) if os.path.exists(cg) else {}
        runs.append(r)
    allocs = {}
    ap = os.path.join(out, "allocs.json")
    if os.path.exists(ap):
        allocs = json.load(open(ap))
    corpora = runs[0].get("corpora", {})
    if corpora:
        parser_summary(runs, corpora, allocs)
    rt_summary(runs)


def parser_summary(runs, corpora, allocs):
    parsers = ["valkit_reply", "valkit_reply_fed", "valkit_decoder", "valkit_decoder_shared", "valkit_decode",
               "redis_parser", "rp_owned", "rp_range", "rp_bytes", "walker", "memcpy"]
    print("## Parser (no network): median over runs\n")
    print("Mframes/s and MB/s (1 MB = 10^6 bytes) per parser; allocations per reply in brackets.\n")
    print("| corpus | " + " | ".join(parsers) + " |")
    print("|---" * (len(parsers) + 1) + "|")
    for c, meta in corpora.items():
        cells = []
        for p in parsers:
            ns = med([r["parse"].get(c, {}).get(p) for r in runs])
            if ns is None:
                cells.append("n/a")
                continue
            fps = meta["frames"] / (ns / 1e9) / 1e6
            mbs = meta["bytes"] / (ns / 1e9) / 1e6
            a = allocs.get(f"{c}/{p}", {}).get("allocs_per_reply")
            cell = f"{fps:.3g} Mf/s, {mbs:.0f} MB/s"
            if a is not None:
                cell += f" [{a:.2f}]"
            cells.append(cell)
        print(f"| {c} | " + " | ".join(cells) + " |")

    for ours, what in [("valkit_reply", "Decoder::next_reply, the decode of typed replies (headline)"),
                       ("valkit_decoder", "Decoder::next_value, building Values (raw exec, pipelines)")]:
        print(f"\n### Parser ratios: {what}; speed / peer speed, median of per-run ratios\n")
        print("| corpus | vs redis Parser (goal >= 10) | vs rp range (goal >= 2) | vs rp bytes (goal >= 2) | vs rp owned | one-shot decode vs redis | vs walker | vs memcpy |")
        print("|---|---|---|---|---|---|---|---|")
        for c in corpora:
            def ratio(num, den):
                return med([(r["parse"][c][den] / r["parse"][c][num])
                            if c in r["parse"] and num in r["parse"][c] and den in r["parse"][c] else None
                            for r in runs])
            print(f"| {c} | {fmt(ratio(ours, 'redis_parser'))} | "
                  f"{fmt(ratio(ours, 'rp_range'))} | {fmt(ratio(ours, 'rp_bytes'))} | "
                  f"{fmt(ratio(ours, 'rp_owned'))} | {fmt(ratio('valkit_decode', 'redis_parser'))} | "
                  f"{fmt(ratio(ours, 'walker'), '.3f')} | {fmt(ratio(ours, 'memcpy'), '.3f')} |")



def rt_summary(runs):
    print("\n## Round trips, interleaved (headline): ops/s and ratios\n")
    print("Each run: short slices of every client in turn, rotating who starts; ratios are taken")
    print("within a round, then the median over rounds, then the median over runs.")
    places = sorted({r.get("interleaved", {}).get("placement", "unpinned") for r in runs})
    print("CPU placement: " + "; ".join(places) + ". Load average (1/5/15 min) after each run's")
    print("round trips: " + "; ".join(r.get("load", "n/a") for r in runs) + ".\n")
    print("| op | valkit | redis crate | raw socket | redis-benchmark -c 1 | valkit/raw | valkit/redis crate | valkit/redis-benchmark |")
    print("|---|---|---|---|---|---|---|---|")
    order = ["get_16B", "get_1KiB", "set_16B", "set_1KiB", "pipe64_get_16B", "pipe64_set_16B", "mget_100"]
    for op in order:
        rows = [r.get("interleaved", {}).get(op) for r in runs]
        rows = [x for x in rows if x]
        if not rows:
            continue
        cells = [med([x.get(k) for x in rows]) for k in ("valkit", "redis", "raw", "redis_benchmark")]
        ratios = [med([x.get(k) for x in rows]) for k in
                  ("valkit_over_raw", "valkit_over_redis", "valkit_over_redis_benchmark")]
        print(f"| {op} | " + " | ".join(fmt(x, ",.0f") for x in cells) + " | "
              + " | ".join(fmt(x) for x in ratios) + " |")

    print("\n### Per run: valkit/raw, valkit/redis crate, valkit/redis-benchmark; spread of the rounds\n")
    print("Spread: per run, the raw socket's highest per-round rate over its lowest (load drift")
    print("within the run; a slice in the cross-CPU mode would show as ~7).\n")
    print("| op | valkit/raw per run | valkit/redis per run | valkit/redis-benchmark per run | raw max/min per run |")
    print("|---|---|---|---|---|")
    for op in order:
        rows = [r.get("interleaved", {}).get(op) for r in runs]
        rows = [x for x in rows if x]
        if not rows:
            continue
        per = [", ".join(fmt(x.get(k)) for x in rows)
               for k in ("valkit_over_raw", "valkit_over_redis", "valkit_over_redis_benchmark")]
        spreads = []
        for x in rows:
            raws = [s[2] for s in x.get("per_round", []) if s[2]]
            spreads.append(f"{max(raws) / min(raws):.2f}" if raws else "n/a")
        spread = ", ".join(spreads)
        print(f"| {op} | " + " | ".join(per) + f" | {spread} |")

    print("\n## Round trips, criterion (sequential blocks; more exposed to load drift): ops/s, median over runs\n")
    ops = list(runs[0].get("rt", {}).keys())
    order = ["get_16B", "get_1KiB", "set_16B", "set_1KiB", "pipe64_get_16B", "pipe64_set_16B", "mget_100"]
    ops = [o for o in order if o in ops] + [o for o in ops if o not in order]
    per = {"pipe64_get_16B": 64, "pipe64_set_16B": 64}

    def ops_s(r, op, who):
        ns = r["rt"].get(op, {}).get(who)
        return None if ns is None else per.get(op, 1) / (ns / 1e9)

    def rb(r, op):
        return r.get("redis_benchmark", {}).get(op)

    print("| op | valkit | redis crate | raw socket | redis-benchmark -c 1 |")
    print("|---|---|---|---|---|")
    for op in ops:
        cells = [med([ops_s(r, op, w) for r in runs]) for w in ("valkit", "redis", "raw")]
        cells.append(med([rb(r, op) for r in runs]))
        print(f"| {op} | " + " | ".join(fmt(x, ",.0f") for x in cells) + " |")

    print("\n### Round-trip ratios (valkit ops/s over peer ops/s; median of per-run ratios)\n")
    print("| op | vs raw socket | vs redis crate | vs redis-benchmark |")
    print("|---|---|---|---|")
    for op in ops:
        def rr(f):
            vals = []
            for r in runs:
                a, b = ops_s(r, op, "valkit"), f(r)
                vals.append(a / b if a and b else None)
            return med(vals)
        print(f"| {op} | {fmt(rr(lambda r: ops_s(r, op, 'raw')))} | "
              f"{fmt(rr(lambda r: ops_s(r, op, 'redis')))} | {fmt(rr(lambda r: rb(r, op)))} |")

    print("\n## Client instructions per unpipelined GET (callgrind, (N=2000 - N=1000) / 1000)\n")
    print("| run | valkit | redis crate | ratio (goal <= 0.5) |")
    print("|---|---|---|---|")
    ratios = []
    for i, r in enumerate(runs, 1):
        cg = r["callgrind"]
        if not cg:
            continue
        v = (cg["valkit_2000"] - cg["valkit_1000"]) / 1000
        d = (cg["redis_2000"] - cg["redis_1000"]) / 1000
        ratios.append(v / d)
        print(f"| {i} | {v:,.0f} | {d:,.0f} | {v / d:.3f} |")
    if ratios:
        print(f"| median | | | {statistics.median(ratios):.3f} |")

    print("\n## Client instructions per pipeline of 64 SETs of 16 B (callgrind, (N=200 - N=100) / 100)\n")
    print("| run | valkit | redis crate | ratio |")
    print("|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        cg = r["callgrind"]
        if "valkit_pipe_set_200" not in cg:
            continue
        v = (cg["valkit_pipe_set_200"] - cg["valkit_pipe_set_100"]) / 100
        d = (cg["redis_pipe_set_200"] - cg["redis_pipe_set_100"]) / 100
        print(f"| {i} | {v:,.0f} | {d:,.0f} | {v / d:.3f} |")


def pool_summary(out):
    runs = []
    for d in sorted(glob.glob(os.path.join(out, "run-*"))):
        p = os.path.join(d, "pool.json")
        if os.path.exists(p):
            runs.append(json.load(open(p)))
    if not runs:
        return
    print("## Pool checkout + GET vs redis-rs + r2d2 (issue 3)\n")
    print("ops/s: median over rounds, then over runs. Ratios: valkit `pool` over the r2d2 pool of")
    print("the same size, taken within each round, median over rounds, then median over runs.")
    print("Load average (1/5/15 min) at the start of each run: "
          + "; ".join(r["load_before"] for r in runs) + ".\n")

    def rows(r, threads):
        return {(x["variant"], x["size"]): x for x in r["rows"] if x["threads"] == threads}

    def round_ratio(r, threads, size, peer):
        rs = rows(r, threads)
        a, b = rs[("pool", size)]["rounds"], rs[(peer, size)]["rounds"]
        return statistics.median([x / y for x, y in zip(a, b)])

    variants = ["pool", "pool+ping", "r2d2 default", "r2d2 no-check"]
    sizes = sorted({x["size"] for x in runs[0]["rows"] if x["size"] is not None})
    print("| threads | pool size | " + " | ".join(f"{v} ops/s" for v in variants)
          + " | conn/thread ops/s | valkit/r2d2 no-check (goal >= 1.0) | valkit/r2d2 default (goal >= 1.8) | per run (no-check / default) |")
    print("|---" * (len(variants) + 6) + "|")
    for threads in (2, 8):
        for size in sizes:
            cells = [med([rows(r, threads).get((v, size), {}).get("ops_s") for r in runs])
                     for v in variants]
            ct = med([rows(r, threads).get(("conn/thread", None), {}).get("ops_s") for r in runs])
            nc = [round_ratio(r, threads, size, "r2d2 no-check") for r in runs]
            d = [round_ratio(r, threads, size, "r2d2 default") for r in runs]
            per = "; ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(nc, d))
            print(f"| {threads} | {size} | " + " | ".join(fmt(x, ",.0f") for x in cells)
                  + f" | {fmt(ct, ',.0f')} | {fmt(med(nc))} | {fmt(med(d))} | {per} |")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
    elif sys.argv[1] == "--pool-summary":
        pool_summary(sys.argv[2])
    else:
        collect(sys.argv[1], sys.argv[2])
