"""Side-by-side benchmarks: sysmenu against OctoPrint 1.11.8 and against floors.

``python -m benchmarks`` (or ``make bench``) installs OctoPrint into its own cached
venv, starts both servers on 127.0.0.1 with the same commands, measures them in
alternating rounds, and writes ``benchmarks/results/latest.{md,json,png}``.
"""
