#!/bin/bash
# A/B of the re-tune (benchmarks/RESULTS.md, "Re-tune for cheap OTs"): the math functions at
# 16/12 and ReLU6 (32-bit, scale 28), N = 65,536, on both OT engines, the base tree and this one
# alternating, 2 repetitions; one JSON line per run (sirnn bench --json + tree, load) to $1.
#   git archive b630909 src | tar -x -C /tmp/base      # the tree before the re-tune
#   BASE_SRC=/tmp/base/src benchmarks/retune_ab.sh benchmarks/retune_ab.jsonl
out=$(realpath "$1"); : > "$out"
new=${NEW_SRC:-$(cd "$(dirname "$0")/.." && pwd)/src}
base=${BASE_SRC:?set BASE_SRC to the src/ of the tree to compare}
py=${PYTHON:-python}
for f in exp sigmoid tanh rsqrt relu6; do
  args="--n 65536 --bw-in 16 --scale-in 12 --bw-out 16 --scale-out 12"
  [ "$f" = relu6 ] && args="--n 65536 --bw-in 32 --scale-in 28"
  for rep in 1 2; do for e in ferret iknp; do for t in base new; do
    if [ $t = base ]; then src=$base; else src=$new; fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    (cd /tmp && PYTHONPATH=$src $py -m sirnn bench $f $args --ot $e --json 2>/dev/null) | $py -c "
import json, sys; d = json.load(sys.stdin); d['tree'] = '$t'; d['load_before'] = $load; print(json.dumps(d))" >> "$out"
  done; done; done
done
