#!/usr/bin/env python3
"""bench/summarize.py: turns the raw runs of bench/run.sh into its report. Called by run.sh.

  summarize.py --out=DIR --command="bash bench/run.sh ..." --repeat=N [--quick]
               [--write-docs=DOCS_DIR]

Reads DIR/raw.jsonl (one line per fngate_load run: target, scenario id, repeat, exit code,
result object) and writes:
  DIR/results.json  machine, command, every run, per-figure medians, ratios, issue-3 targets
  DIR/results.md    the tables (the part of docs/benchmarks.md that --write-docs replaces)
  DIR/plot.png      throughput, p99 latency and memory per scenario (if gnuplot is installed)
With --write-docs, also replaces what sits between the generated-section markers of
DOCS_DIR/benchmarks.md with results.md, and copies the plot to DOCS_DIR/benchmarks.png.
Standard library only.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone

TARGETS = [("fngate", "fngate"), ("beast", "raw Beast"), ("node", "Node ws")]

# id -> (row label, figure key, unit, higher is better)
SCENARIOS = [
    ("echo_100x1_64", "function echo, 100 conns x 1 in flight, 64 B", "throughput", "msgs/s", True),
    ("echo_100x16_64", "function echo, 100 conns x 16 in flight, 64 B", "throughput", "msgs/s", True),
    ("echo_1000x1_1k", "function echo, 1,000 conns x 1 in flight, 1 KiB", "throughput", "msgs/s", True),
    ("latency_10k", "p50 latency at 10k msgs/s (100 conns, 64 B)", "p50", "us", False),
    ("connect", "connections opened+closed per s (connect event included)", "throughput", "conns/s", True),
    ("idle_10k", "memory per idle connection, 10k held", "bytes_per_conn", "bytes", False),
    ("idle_19k", "memory per idle connection, 19k held", "bytes_per_conn", "bytes", False),
    ("broadcast_10k", "broadcast of one message to 10k connections", "throughput", "deliveries/s", True),
    ("push", "control Send to one connection at a time (64 in flight)", "throughput", "pushes/s", True),
]
SCENARIO_INFO = {s[0]: s for s in SCENARIOS}

BEGIN_MARK = "<!-- bench/run.sh --write-docs: generated from here -->"
END_MARK = "<!-- bench/run.sh --write-docs: generated up to here -->"


def read_runs(path):
    runs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    def tool_version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rev = tool_version(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
    dirty = tool_version(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"])
    ws_version = ""
    try:
        with open(os.path.join(repo, "tests/load/node/node_modules/ws/package.json"), encoding="utf-8") as f:
            ws_version = json.load(f).get("version", "")
    except (OSError, ValueError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "git": rev + ("-dirty" if dirty else ""),
        "compiler": tool_version(["c++", "--version"]).splitlines()[0] if tool_version(["c++", "--version"]) else "",
        "node": tool_version(["node", "--version"]),
        "ws": ws_version,
    }


def figure_of(result, key):
    if key in ("p50", "p99", "p999"):
        return (result.get("latency_us") or {}).get(key)
    return result.get(key)


def medians(runs):
    """(id, target) -> {figure: median over the successful repeats, 'n': count}."""
    grouped = {}
    for run in runs:
        result = run.get("result")
        if run.get("exit") != 0 or not isinstance(result, dict) or not result.get("ok"):
            continue
        grouped.setdefault((run["id"], run["target"]), []).append(run)
    out = {}
    for key, group in grouped.items():
        # Runs the rest of the machine disturbed count only when no other run of the figure
        # is clean; such a median is marked.
        clean = [r["result"] for r in group if not r.get("disturbed")]
        results = clean or [r["result"] for r in group]
        fig = {"n": len(results), "disturbed": not clean}
        for name in ("throughput", "bytes_per_conn", "p50", "p99", "p999"):
            values = [v for v in (figure_of(r, name) for r in results) if isinstance(v, (int, float))]
            if values:
                fig[name] = statistics.median(values)
        cpu = {}
        for r in results:
            for proc, share in (r.get("cpu") or {}).items():
                if isinstance(share, (int, float)):
                    cpu.setdefault(proc, []).append(share)
        if cpu:
            fig["cpu"] = {proc: statistics.median(v) for proc, v in cpu.items()}
        out[key] = fig
    return out


def human(value, unit):
    if value is None:
        return "-"
    if unit == "us":
        return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} us"
    if unit == "bytes":
        return f"{value / 1000:.1f} KB"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def get(med, sid, target, key):
    return med.get((sid, target), {}).get(key)


def goals(med):
    """The targets of issue 3, each with its measured ratio and status."""
    rows = []

    def add(name, value, goal_text, ok, shortfall):
        rows.append({"goal": name, "measured": value, "target": goal_text,
                     "met": ok, "by": shortfall})

    for sid in ("echo_100x1_64", "echo_100x16_64", "echo_1000x1_1k"):
        r = ratio(get(med, sid, "fngate", "throughput"), get(med, sid, "node", "throughput"))
        label = SCENARIO_INFO[sid][1].replace("function echo, ", "function echo ")
        if r is None:
            add(f"{label}: >= 1.0x Node ws", None, ">= 1.00x", None, "not measured")
        else:
            add(f"{label}: >= 1.0x Node ws", r, ">= 1.00x", r >= 1.0,
                "met" if r >= 1.0 else f"needs {1 / r:.2f}x more throughput ({(1 - r) * 100:.0f}% short)")
    r = ratio(get(med, "latency_10k", "fngate", "p50"), get(med, "latency_10k", "beast", "p50"))
    if r is None:
        add("p50 latency at 10k msgs/s: <= 3x raw Beast", None, "<= 3.00x", None, "not measured")
    else:
        add("p50 latency at 10k msgs/s: <= 3x raw Beast", r, "<= 3.00x", r <= 3.0,
            "met" if r <= 3.0 else f"{r / 3:.2f}x over the limit")
    r = ratio(get(med, "broadcast_10k", "fngate", "throughput"),
              get(med, "echo_100x1_64", "beast", "throughput"))
    if r is None:
        add("broadcast deliveries/s: >= 1.0x raw Beast echo msgs/s (100x1, 64 B)", None, ">= 1.00x", None, "not measured")
    else:
        add("broadcast deliveries/s: >= 1.0x raw Beast echo msgs/s (100x1, 64 B)", r, ">= 1.00x", r >= 1.0,
            "met" if r >= 1.0 else f"needs {1 / r:.2f}x more ({(1 - r) * 100:.0f}% short)")
    for sid, n in (("idle_10k", "10k"), ("idle_19k", "19k")):
        b = get(med, sid, "fngate", "bytes_per_conn")
        if b is None:
            add(f"memory per idle connection ({n} held): <= 3 KB", None, "<= 3.0 KB", None, "not measured")
        else:
            add(f"memory per idle connection ({n} held): <= 3 KB", b, "<= 3.0 KB", b <= 3000,
                "met" if b <= 3000 else f"{(b - 3000) / 1000:.1f} KB over ({b / 3000:.2f}x the limit)")
    r = ratio(get(med, "connect", "fngate", "throughput"), get(med, "connect", "beast", "throughput"))
    if r is None:
        add("connect rate (connect event included): >= 0.5x raw Beast", None, ">= 0.50x", None, "not measured")
    else:
        add("connect rate (connect event included): >= 0.5x raw Beast", r, ">= 0.50x", r >= 0.5,
            "met" if r >= 0.5 else f"needs {0.5 / r:.2f}x more")
    return rows


def markdown(med, goal_rows, info, quick):
    lines = []
    if quick:
        lines += ["**Quick mode: tiny counts to check the tool and script work. These numbers mean nothing.**", ""]
    lines += [
        f"Machine: {info['machine']['nproc']} cores ({info['machine']['cpu']}), "
        f"{info['machine']['memory_gib']} GiB, Linux {info['machine']['kernel']}; servers pinned to one core, "
        f"the load tool to the other. fngate at {info['machine']['git']}; Node {info['machine']['node']}, "
        f"ws {info['machine']['ws']}.",
        "",
        f"Command: `{info['command']}` ({info['finished']}); each figure is the median of "
        f"{info['repeat']} run(s); ratios are of medians from this same run. A run during which the "
        f"rest of the machine used more than a quarter of a core is run again (up to twice) and "
        f"left out when a clean run of the figure exists; † marks a median of disturbed runs only "
        f"({info['disturbed_runs']} of {info['total_runs']} runs were disturbed). ‡ marks a "
        f"figure during which the load tool's own core was at least 90% busy: there the tool, not "
        f"the server, may have been the limit, so the figure is a lower bound for that server.",
        "",
        "| figure | fngate | raw Beast | Node ws | fngate / Beast | fngate / Node |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for sid, label, key, unit, higher_better in SCENARIOS:
        vals = [get(med, sid, t, key) for t, _ in TARGETS]
        if all(v is None for v in vals):
            continue
        unit_note = "" if unit in ("us", "bytes") else f" ({unit})"
        def mark(t, v):
            fig = med.get((sid, t), {})
            if v is None:
                return ""
            m = "†" if fig.get("disturbed") else ""
            if higher_better and (fig.get("cpu") or {}).get("load", 0) >= 0.9:
                m += "‡"  # the load tool's core was full: a lower bound for this server
            return m
        marks = [mark(t, v) for (t, _), v in zip(TARGETS, vals)]
        lines.append(
            f"| {label}{unit_note} | " + " | ".join(human(v, unit) + m for v, m in zip(vals, marks)) + " | "
            + fmt_ratio(ratio(vals[0], vals[1])) + " | " + fmt_ratio(ratio(vals[0], vals[2])) + " |")
    lines += [
        "",
        "Latency (median over runs of each run's percentile; echo scenarios are closed loop, so "
        "their latency is mostly queueing):",
        "",
        "| scenario | fngate p50 / p99 / p99.9 | raw Beast p50 / p99 / p99.9 | Node ws p50 / p99 / p99.9 |",
        "|---|---:|---:|---:|",
    ]
    for sid, label, key, unit, _ in SCENARIOS:
        if sid.startswith("idle"):
            continue
        cells = []
        for t, _ in TARGETS:
            p = [get(med, sid, t, k) for k in ("p50", "p99", "p999")]
            cells.append("-" if p[0] is None else " / ".join(human(v, "us") for v in p))
        if all(c == "-" for c in cells):
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "CPU use in the measured window, medians (share of one core; the server side is pinned to "
        "one core, the load tool to the other; \"other\" is what the rest of the machine used "
        "meanwhile, in cores: above a few % the run shared its cores; a server side well below "
        "100% in a throughput row was waiting, on the load tool or on something else):",
        "",
        "| scenario | fngate: gateway + echo worker + bench worker | raw Beast server | Node ws server |",
        "|---|---:|---:|---:|",
    ]
    for sid, label, key, unit, _ in SCENARIOS:
        cells = []
        for t, _ in TARGETS:
            cpu = med.get((sid, t), {}).get("cpu")
            if not cpu:
                cells.append("-")
                continue
            pct = lambda v: "?" if v is None else f"{max(v, 0) * 100:.0f}%"
            tail = f" (load {pct(cpu.get('load'))}" + (
                f", other {pct(cpu.get('other'))})" if cpu.get("other") is not None else ")")
            if t == "fngate":
                cells.append(" + ".join(pct(cpu.get(p)) for p in ("fngate", "echo_function", "bench_function"))
                             + tail)
            else:
                cells.append(f"{pct(cpu.get('server'))}{tail}")
        if all(c == "-" for c in cells):
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Targets of issue 3, measured in this run:",
        "",
        "| target | measured | limit | status |",
        "|---|---:|---:|---|",
    ]
    for g in goal_rows:
        if g["measured"] is None:
            measured = "-"
        elif "KB" in g["target"]:
            measured = human(g["measured"], "bytes")
        else:
            measured = fmt_ratio(g["measured"])
        status = "not measured" if g["met"] is None else ("**met**" if g["met"] else f"**not met**: {g['by']}")
        lines.append(f"| {g['goal']} | {measured} | {g['target']} | {status} |")
    failed = info["failed_runs"]
    if failed:
        lines += ["", f"Failed runs (left out of the medians): {len(failed)}: "
                  + ", ".join(f"{f['target']}/{f['id']}#{f['repeat']} ({f['why']})" for f in failed)]
    return "\n".join(lines) + "\n"


def plot(med, out_dir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return None
    def write(name, rows):
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            for label, vals in rows:
                f.write(f'"{label}" ' + " ".join("NaN" if v is None else f"{v:.6g}" for v in vals) + "\n")
        return path
    short = {
        "echo_100x1_64": "echo 100x1", "echo_100x16_64": "echo 100x16",
        "echo_1000x1_1k": "echo 1000x1 1K", "latency_10k": "10k/s fixed",
        "connect": "connect", "broadcast_10k": "broadcast 10k", "push": "push",
        "idle_10k": "10k held", "idle_19k": "19k held",
    }
    tput = [(short[s], [get(med, s, t, "throughput") for t, _ in TARGETS])
            for s in ("echo_100x1_64", "echo_100x16_64", "echo_1000x1_1k", "connect", "broadcast_10k", "push")]
    p99 = [(short[s], [get(med, s, t, "p99") for t, _ in TARGETS])
           for s in ("echo_100x1_64", "echo_100x16_64", "echo_1000x1_1k", "latency_10k", "connect",
                     "broadcast_10k", "push")]
    mem = [(short[s], [(lambda v: None if v is None else v / 1000)(get(med, s, t, "bytes_per_conn"))
                       for t, _ in TARGETS]) for s in ("idle_10k", "idle_19k")]
    f_tput, f_p99, f_mem = write("plot_throughput.dat", tput), write("plot_p99.dat", p99), write("plot_memory.dat", mem)
    png = os.path.join(out_dir, "plot.png")
    def has_data(rows):
        return any(v is not None for _, vals in rows for v in vals)
    colors = ("title 'fngate' lc rgb '#d62728', '' using 3 title 'raw Beast' lc rgb '#1f77b4', "
              "'' using 4 title 'Node ws' lc rgb '#2ca02c'")
    panels = []
    if has_data(tput):
        panels.append(f"""set title "throughput (per second, log scale; higher is better)"
set logscale y
set yrange [100:*]
plot '{f_tput}' using 2:xtic(1) {colors}""")
    if has_data(p99):
        panels.append(f"""set title "p99 latency (microseconds, log scale; lower is better)"
set logscale y
set yrange [10:*]
plot '{f_p99}' using 2:xtic(1) {colors}""")
    if has_data(mem):
        panels.append(f"""set title "memory per idle connection (KB, server RSS growth / connections; lower is better)"
unset logscale y
set yrange [0:*]
plot '{f_mem}' using 2:xtic(1) {colors}""")
    if not panels:
        return None
    height = 130 + 380 * len(panels)
    terminal = f"pngcairo size 1100,{height} font 'sans,10'"
    script = f"""
set terminal {terminal}
set output '{png}'
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set grid ytics
set xtics nomirror
set xrange [-0.6:*]
set multiplot layout {len(panels)},1 title "fngate vs raw Beast vs Node ws (medians; servers on one core, load on the other)"
""" + "\n".join(panels) + "\nunset multiplot\n"
    script_path = os.path.join(out_dir, "plot.gp")
    with open(script_path, "w", encoding="utf-8") as f:
        f.write(script)
    proc = subprocess.run([gnuplot, script_path], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not os.path.exists(png):
        if "pngcairo" in proc.stderr:  # no cairo: the libgd terminal
            with open(script_path, "w", encoding="utf-8") as f:
                f.write(script.replace(terminal, f"png size 1100,{height}"))
            proc = subprocess.run([gnuplot, script_path], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            print("summarize.py: gnuplot failed:\n" + proc.stderr, file=sys.stderr)
            return None
    return png


def write_docs(docs_dir, md, png):
    page = os.path.join(docs_dir, "benchmarks.md")
    with open(page, encoding="utf-8") as f:
        text = f.read()
    if BEGIN_MARK not in text or END_MARK not in text:
        print(f"summarize.py: {page} lacks the generated-section markers; not rewritten", file=sys.stderr)
        return False
    head, rest = text.split(BEGIN_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    with open(page, "w", encoding="utf-8") as f:
        f.write(head + BEGIN_MARK + "\n\n" + md + "\n" + END_MARK + tail)
    if png:
        shutil.copyfile(png, os.path.join(docs_dir, "benchmarks.png"))
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="bash bench/run.sh")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write-docs", default="")
    args = ap.parse_args()

    runs = read_runs(os.path.join(args.out, "raw.jsonl"))
    med = medians(runs)
    failed = []
    for run in runs:
        result = run.get("result")
        if run.get("exit") != 0 or not isinstance(result, dict) or not result.get("ok"):
            why = result.get("error") or result.get("first_error") if isinstance(result, dict) else "no output"
            failed.append({"target": run["target"], "id": run["id"], "repeat": run["repeat"], "why": why or "failed"})
    info = {
        "machine": machine(),
        "command": args.command,
        "repeat": args.repeat,
        "quick": args.quick,
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "failed_runs": failed,
        "total_runs": len(runs),
        "disturbed_runs": sum(1 for r in runs if r.get("disturbed")),
    }
    goal_rows = goals(med)
    md = markdown(med, goal_rows, info, args.quick)
    summary = {}
    for (sid, target), fig in sorted(med.items()):
        summary.setdefault(sid, {})[target] = fig
    ratios = {}
    for sid, _, key, _, _ in SCENARIOS:
        f = get(med, sid, "fngate", key)
        ratios[sid] = {"key": key, "fngate_over_beast": ratio(f, get(med, sid, "beast", key)),
                       "fngate_over_node": ratio(f, get(med, sid, "node", key))}
    results = dict(info, medians=summary, ratios=ratios, targets=goal_rows, runs=runs)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(md)
    png = plot(med, args.out)
    if args.write_docs:
        if args.quick:
            print("summarize.py: --write-docs ignored in quick mode", file=sys.stderr)
        else:
            write_docs(args.write_docs, md, png)


if __name__ == "__main__":
    main()
