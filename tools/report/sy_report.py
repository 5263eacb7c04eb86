#!/usr/bin/python3
"""sy-report: the results of a Switchyard run as pictures. Reads the metrics.jsonl and
summary.json a run left in its workdir (sy-local, or sy-trainer --standalone) and writes
report.html plus its PNGs into that directory; given several runs, writes
comparison.html (and its PNGs) into the first run's directory or --out. Prints the
page's path. Exit 2 for bad usage or a missing or corrupt run directory (nothing is
written then).
"""
import argparse
import os
import sys

from syreport import charts, page
from syreport.run_data import Run, RunDirError


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="sy-report", description="Write an HTML report with PNG pictures of one run, or compare several.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="a finished run's --workdir")
    parser.add_argument("--out", metavar="DIR",
                        help="where to write (default: the run's directory, or the first run's)")
    return parser.parse_args(argv)


def write_report(run_dirs, out_dir):
    """Writes the page and its pictures; returns the page's path. RunDirError before writing anything."""
    runs = [Run(d) for d in run_dirs]
    out_dir = out_dir or runs[0].directory
    os.makedirs(out_dir, exist_ok=True)
    if len(runs) == 1:
        pictures = charts.run_charts(runs[0], out_dir, "report_")
        text, name = page.run_page(runs[0], pictures), "report.html"
    else:
        pictures = charts.comparison_charts(runs, out_dir, "compare_")
        text, name = page.comparison_page(runs, pictures), "comparison.html"
    path = os.path.join(out_dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def main(argv):
    args = parse_args(argv)
    try:
        path = write_report(args.runs, args.out)
    except RunDirError as e:
        print("sy-report: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("sy-report: cannot write the report: %s" % e, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
