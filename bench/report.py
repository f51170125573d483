#!/usr/bin/env python3
"""The ratios of a bench/all.sh run, from its raw output.

    bench/report.py RAW_FILE [--benchmarks BENCHMARKS.md]
        regenerates the section of BENCHMARKS.md between
        <!-- bench/all.sh summary: begin --> and <!-- bench/all.sh summary: end -->
        from RAW_FILE: every ratio by round, its median, spread, target, met.
    bench/report.py --summary [--row ROW] [--round N] RAW_FILE
        prints the same as text (bench/all.sh does, after each round and
        at the end).

Everything is computed from the "MEASURE row=... round=... server=..." lines
bench/all.sh prints; nothing else in the file is read but its "machine:",
"RUN" and "HISTOGRAM" lines. Python 3 standard library only.
"""
import argparse
import os
import re
import statistics
import sys

BEGIN = "<!-- bench/all.sh summary: begin -->"
END = "<!-- bench/all.sh summary: end -->"


def parse(path):
    """measures[(row, round, server)] = {field: value}; plus the other lines."""
    measures, histograms, machine, run = {}, [], None, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("machine: "):
                machine = line[len("machine: "):]
            elif line.startswith("RUN "):
                run = fields(line[4:])
            elif line.startswith("HISTOGRAM "):
                # all.sh's own lines name their row; wrk's script prints
                # one without, which all.sh passes on in its log.
                h = fields(line[len("HISTOGRAM "):])
                if "row" in h:
                    histograms.append(h)
            elif line.startswith("MEASURE "):
                m = fields(line[len("MEASURE "):])
                try:
                    key = (m["row"], int(m["round"]), m["server"])
                except (KeyError, ValueError):
                    sys.exit("bad MEASURE line: " + line)
                measures[key] = m
    return measures, histograms, machine, run


def fields(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def num(measures, row, rnd, server, field):
    m = measures.get((row, rnd, server))
    if m is None:
        return None
    try:
        return float(m[field])
    except (KeyError, ValueError):
        return None


def ratio(row, a, b, field):
    def f(measures, rnd):
        x, y = num(measures, row, rnd, a, field), num(measures, row, rnd, b, field)
        return x / y if x is not None and y else None
    return f


def logging_cost(measures, rnd):
    r = ratio("http", "authd", "authd-warn", "rps")(measures, rnd)
    return None if r is None else 1 - r


def value(row, server, field):
    return lambda measures, rnd: num(measures, row, rnd, server, field)


def times(v):
    return "%.2f×" % v


def percent(v):
    return "%.1f %%" % (100 * v)


def ms(v):
    return "%.2f ms" % v


def byte_size(v):
    return "%.0f B" % v


# key, what, the figure of one round, format, target (text), met(values):
# every target is met in the median of the rounds, but the client_credentials
# p99, which must be at most oidc-provider's in every round. Rows without a
# target are there to be read.
ROWS = [
    ("grpc", "gRPC Introspect, cache hit / bare echo, req/s",
     ratio("grpc", "authd", "echo", "rps"), times, "≥ 0.85×", lambda v: statistics.median(v) >= 0.85),
    ("grpc", "gRPC Introspect p99 / echo p99",
     ratio("grpc", "authd", "echo", "p99_ms"), times, "≤ 1.1×", lambda v: statistics.median(v) <= 1.1),
    ("http", "HTTP introspection / nginx's fixed 100-byte body",
     ratio("http", "authd", "nginx", "rps"), times, "≥ 0.5×", lambda v: statistics.median(v) >= 0.5),
    ("http", "HTTP introspection / oidc-provider",
     ratio("http", "authd", "oidc-provider", "rps"), times, "≥ 8×", lambda v: statistics.median(v) >= 8),
    ("http", "logging cost at the default level (1 − info/warn req/s)",
     logging_cost, percent, "≤ 5 %", lambda v: statistics.median(v) <= 0.05),
    ("cc", "client_credentials / oidc-provider, req/s",
     ratio("cc", "authd", "oidc-provider", "rps"), times, "≥ 3×", lambda v: statistics.median(v) >= 3),
    ("cc", "client_credentials p99, authd",
     value("cc", "authd", "p99_ms"), ms, "", None),
    ("cc", "client_credentials p99, oidc-provider",
     value("cc", "oidc-provider", "p99_ms"), ms, "", None),
    ("cc", "client_credentials p99, authd / oidc-provider",
     ratio("cc", "authd", "oidc-provider", "p99_ms"), times, "≤ 1× in every round", lambda v: max(v) <= 1),
    ("cold", "cold introspection (gRPC, every token a cache miss) / pgbench -S -M prepared",
     ratio("cold", "authd", "pgbench", "rps"), times, "≥ 0.5×", lambda v: statistics.median(v) >= 0.5),
    ("memory", "bytes per cached token (RSS difference)",
     value("memory", "authd", "bytes_per_token"), byte_size, "≤ 200 B", lambda v: statistics.median(v) <= 200),
]

# The absolute figures behind the ratios: row, server, field, format.
FIGURES = [
    ("grpc", "echo", "rps"), ("grpc", "authd", "rps"),
    ("grpc", "echo", "p99_ms"), ("grpc", "authd", "p99_ms"),
    ("http", "authd", "rps"), ("http", "authd-warn", "rps"),
    ("http", "nginx", "rps"), ("http", "oidc-provider", "rps"),
    ("cc", "authd", "rps"), ("cc", "oidc-provider", "rps"),
    ("cold", "authd", "rps"), ("cold", "pgbench", "rps"),
]


def rounds_of(measures):
    return sorted({k[1] for k in measures})


def table(measures, only_row=None, only_round=None):
    """(header, rows): each row [what, per-round..., median, spread, target, met]."""
    rounds = [r for r in rounds_of(measures) if only_round is None or r == only_round]
    header = ["measure"] + ["round %d" % r for r in rounds] + ["median", "spread (min–max)", "target", "met"]
    out = []
    for row, what, figure, fmt, target, met in ROWS:
        if only_row is not None and row != only_row:
            continue
        per_round = [figure(measures, r) for r in rounds]
        values = [v for v in per_round if v is not None]
        if not values:
            continue
        cells = [what] + [fmt(v) if v is not None else "–" for v in per_round]
        median = statistics.median(values)
        spread = "%s–%s" % (fmt(min(values)), fmt(max(values))) if len(values) > 1 else "–"
        verdict = "" if met is None else ("met" if met(values) else "not met")
        if row == "memory":
            n = measures.get(("memory", 1, "authd"), {}).get("tokens")
            if n:
                cells[0] = "%s, at %s tokens" % (what, "{:,}".format(int(n)))
        out.append(cells + [fmt(median), spread, target, verdict])
    return header, out


def figures_table(measures):
    rounds = rounds_of(measures)
    header = ["row", "server", "figure"] + ["round %d" % r for r in rounds] + ["median"]
    out = []
    for row, server, field in FIGURES:
        per_round = [num(measures, row, r, server, field) for r in rounds]
        values = [v for v in per_round if v is not None]
        if not values:
            continue
        fmt = (lambda v: "%.0f" % v) if field == "rps" else (lambda v: "%.3f" % v)
        unit = "req/s" if field == "rps" else "p99 ms"
        out.append([row, server, unit] + [fmt(v) if v is not None else "–" for v in per_round]
                   + [fmt(statistics.median(values))])
    return header, out


def text_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def histogram_text(h):
    keys = [k for k in h if k.endswith("_ms")]
    return "%s %s, round %s: %s" % (h.get("row", "?"), h.get("server", "?"), h.get("round", "?"),
                                    ", ".join("%s %s" % (k[:-3], h[k]) for k in keys) + " (ms)")


def summary(args):
    measures, histograms, _, _ = parse(args.raw)
    header, rows = table(measures, args.row, args.round)
    if not rows:
        print("(no measurements%s yet)" % ("" if args.row is None else " for " + args.row))
        return
    if args.round is not None:
        for r in rows:
            print("round %d: %s: %s (target %s)" % (args.round, r[0], r[1], r[-2] or "none"))
        return
    print(text_table(header, rows))
    if args.row is None:
        for h in histograms:
            print("\nlatency distribution, " + histogram_text(h))
        fh, fr = figures_table(measures)
        if fr:
            print("\nfigures behind the ratios:")
            print(text_table(fh, fr))


def section(raw, measures, histograms, machine, run, benchmarks):
    rel = os.path.relpath(os.path.abspath(raw), os.path.dirname(os.path.abspath(benchmarks)))
    commit = re.search(r"commit ([0-9a-f]+(?: \(with uncommitted changes\))?)", machine or "")
    parts = [BEGIN,
             "<!-- generated by bench/report.py from %s; regenerate it rather than edit it -->" % rel,
             ""]
    if run:
        parts.append("One `bench/all.sh` run, %s rounds of %s each (after %s of warm-up), "
                     "every row alternating within a round%s; raw output: [`%s`](%s)."
                     % (run.get("rounds", "?"), run.get("duration", "?"), run.get("warmup", "?"),
                        ", at commit " + commit.group(1) if commit else "", rel, rel))
    if machine:
        parts += ["", "Machine: " + machine + "."]
    header, rows = table(measures)
    parts += ["", markdown_table(header, rows) if rows else "(no measurements in the raw output)"]
    if histograms:
        parts += ["", "Latency distribution of client_credentials:", ""]
        parts += ["- " + histogram_text(h) for h in histograms]
    fh, fr = figures_table(measures)
    if fr:
        parts += ["", "The figures behind the ratios:", "", markdown_table(fh, fr)]
    parts.append(END)
    return "\n".join(parts)


def regenerate(args):
    measures, histograms, machine, run = parse(args.raw)
    with open(args.benchmarks, encoding="utf-8") as f:
        doc = f.read()
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        sys.exit("%s has no %s ... %s markers" % (args.benchmarks, BEGIN, END))
    new = doc[:start] + section(args.raw, measures, histograms, machine, run, args.benchmarks) \
        + doc[end + len(END):]
    with open(args.benchmarks, "w", encoding="utf-8") as f:
        f.write(new)
    print("%s: summary regenerated from %s" % (args.benchmarks, args.raw))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("raw", help="bench/all.sh's output")
    p.add_argument("--summary", action="store_true", help="print the ratios instead of editing BENCHMARKS.md")
    p.add_argument("--row", choices=sorted({r[0] for r in ROWS}), help="with --summary: one row only")
    p.add_argument("--round", type=int, help="with --summary: one round only")
    p.add_argument("--benchmarks", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "BENCHMARKS.md"),
                   help="the file to regenerate (default: the repository's BENCHMARKS.md)")
    args = p.parse_args()
    if args.summary:
        summary(args)
    else:
        regenerate(args)


if __name__ == "__main__":
    main()
