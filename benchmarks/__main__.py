"""``python -m benchmarks``: run the benchmark and write benchmarks/results/latest.*."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import report
from .run import Options, run


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["fleet"]:  # `python -m benchmarks fleet ...`: the MQTT fleet benchmark
        from . import fleet

        return fleet.main(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round (a smoke test)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3; medians are reported)")
    parser.add_argument("--connections", help="wrk connection counts, comma-separated (default 1,8,32,64)")
    parser.add_argument("--duration", type=int, help="seconds of wrk per connection count (default 3)")
    parser.add_argument("--executes", type=int, help="sequential POSTs per command kind (default 50)")
    parser.add_argument("--out", type=Path, default=report.RESULTS, help="where latest.* go")
    parser.add_argument("--no-readme", action="store_true", help="leave the README's Performance table alone")
    args = parser.parse_args(args_in)
    options = Options.quick() if args.quick else Options()
    changes: dict[str, object] = {}
    if args.rounds is not None:
        changes["rounds"] = max(1, args.rounds)
    if args.connections:
        changes["connections"] = tuple(int(c) for c in args.connections.split(","))
    if args.duration is not None:
        changes["duration"] = max(1, args.duration)
    if args.executes is not None:
        changes["executes"] = max(1, args.executes)
    options = dataclasses.replace(options, **changes)  # type: ignore[arg-type]
    result = run(options, log=lambda line: print(line, flush=True))
    readme = None if (args.no_readme or args.quick) else report.README
    paths = report.write(result, args.out, readme)
    print()
    print(report.markdown(dict(result, targets=report.targets(result))))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
