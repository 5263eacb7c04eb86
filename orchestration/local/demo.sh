#!/usr/bin/env bash
# `make demo`: trains a small Switch Transformer on a local cluster (2 expert
# hosts, 2 trainers, loopback) for a few minutes on the text of the `fortunes`
# package (installed by `make deps`), then prints sy-local's summary: loss curve
# start/end, validation loss, tokens/s, parameter checksum and per-expert load; and
# ends by writing the run's report (sy-report: an HTML page with PNG pictures) and
# printing its path.
# Usage: orchestration/local/demo.sh BUILD_DIR
#   DEMO_STEPS=N changes the length, DEMO_DIR=DIR the directory (default BUILD_DIR/demo).
set -euo pipefail

build=${1:?usage: demo.sh BUILD_DIR}
launcher="$build/bin/sy-local"
reporter="$build/bin/sy-report"
fortunes=/usr/share/games/fortunes
workdir=${DEMO_DIR:-$build/demo}
steps=${DEMO_STEPS:-400}

for tool in "$launcher" "$reporter"; do
  if [ ! -x "$tool" ]; then
    echo "demo.sh: $tool is missing: build first (make build)" >&2
    exit 1
  fi
done

# The corpus: every plain-text fortune file (not the .dat indexes, not the .u8
# links), in byte order of their names, so every machine trains on the same bytes.
mkdir -p "$workdir"
corpus="$workdir/corpus.txt"
: > "$corpus"
while IFS= read -r name; do
  path="$fortunes/$name"
  case "$name" in *.dat|*.u8) continue ;; esac
  if [ -f "$path" ] && [ ! -L "$path" ]; then cat "$path" >> "$corpus"; fi
done < <(LC_ALL=C ls "$fortunes" 2>/dev/null)
if [ ! -s "$corpus" ]; then
  echo "demo.sh: no fortune texts in $fortunes: install the 'fortunes' package (make deps)" >&2
  exit 1
fi
echo "demo: corpus $corpus ($(wc -c < "$corpus") bytes from $fortunes)"
echo "demo: 2 expert hosts x 2 trainers, $steps steps; Ctrl-C stops every process"

"$launcher" --hosts=2 --trainers=2 --steps="$steps" --data="$corpus" --workdir="$workdir/run" \
  --layers=4 --d_model=128 --heads=4 --d_ff=512 --experts=8 --moe_every=2 --context=128 \
  --micro_batch=8 --micro_batches=4 --warmup=30 --eval_every=$((steps / 4 > 0 ? steps / 4 : 1)) \
  --dropout=0.1 --expert_dropout=0.4
page=$("$reporter" "$workdir/run")
echo "demo: report (loss, tokens/s, dropped tokens, expert and host load) in $page"

# The trained model speaks: the leader saved its final weights in the run's workdir.
echo "demo: 200 bytes sampled from the trained model (sy-generate --temperature=0.8 --seed=1):"
"$build/bin/sy-generate" --checkpoint="$workdir/run" --tokens=200 --temperature=0.8 --seed=1 --log_level=warning
echo
