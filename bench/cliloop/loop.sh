#!/usr/bin/env bash
# The learning loop on cxr8 through the product's own commands, as a site
# would run it: train on the `seed` normals, ingest the `pool` films,
# then ROUNDS times: export a worklist of PER_ROUND cases, answer it from
# the labels file (a stand-in radiologist), import the answers, retrain;
# after every round, `sentinel eval` on `dev` (what the reports would say).
#
#   bench/cliloop/loop.sh [WORKSPACE] [-- extra flags for train and retrain, e.g. --epochs 10 or --config F]
#
# Environment: SENTINEL (the binary; default: built from this checkout),
# DATA (default ../shared/data/cxr8), ROUNDS (5), PER_ROUND (25).
# Prints one line per round: round, labels, ROC-AUC, PR-AUC, F1, FP, TP.
# Needs /usr/bin/python3 (Debian) to read the worklist CSV.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
ws="${1:-$(mktemp -d)/ws}"
shift || true
[ "${1:-}" = "--" ] && shift
extra=("$@")
data="${DATA:-$root/../shared/data/cxr8}"
rounds="${ROUNDS:-5}"
per="${PER_ROUND:-25}"
if [ ! -f "$data/labels.csv" ]; then
  echo "$data/labels.csv not found: set DATA" >&2
  exit 1
fi
sentinel="${SENTINEL:-}"
if [ -z "$sentinel" ]; then
  sentinel="$(mktemp -d)/sentinel"
  (cd "$root" && go build -o "$sentinel" ./cmd/sentinel)
fi
work="$(dirname "$ws")"
mkdir -p "$work/pool"
# The pool films, as copies (the agent refuses symbolic links).
/usr/bin/python3 - "$data" "$work/pool" <<'PY'
import csv, os, shutil, sys
data, pool = sys.argv[1], sys.argv[2]
for r in csv.DictReader(open(os.path.join(data, 'labels.csv'))):
    if r['split'] == 'pool':
        dst = os.path.join(pool, r['file'])
        if not os.path.lexists(dst):
            shutil.copy2(os.path.join(data, 'images', r['file']), dst)
PY
"$sentinel" train --workspace "$ws" --normals "$data/images" --labels "$data/labels.csv" --split seed "${extra[@]}" >/dev/null 2>&1
"$sentinel" ingest "$work/pool" --workspace "$ws" --patients "$data/labels.csv" >/dev/null 2>&1
evaluate() {
  "$sentinel" eval --workspace "$ws" --data "$data/images" --labels "$data/labels.csv" --split dev --json 2>/dev/null |
    /usr/bin/python3 -c 'import sys, json; r = json.load(sys.stdin); print("round %s labels %s roc_auc %.4f pr_auc %.4f f1 %.4f fp %d tp %d" % (sys.argv[1], sys.argv[2], r["roc_auc"], r["pr_auc"], r["f1"], r["fp"], r["tp"]))' "$1" "$2"
}
evaluate 0 0
labels=0
for round in $(seq 1 "$rounds"); do
  "$sentinel" queries export --workspace "$ws" --n "$per" --out "$work/worklist$round.csv" 2>/dev/null
  /usr/bin/python3 - "$data/labels.csv" "$work/worklist$round.csv" "$work/answers$round.csv" "$round" <<'PY'
import csv, os, sys
truth = {r['file']: r['finding'] for r in csv.DictReader(open(sys.argv[1]))}
with open(sys.argv[3], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['file', 'label', 'reader', 'time'])
    for r in csv.DictReader(open(sys.argv[2])):
        name = os.path.basename(r['file'])
        if name in truth:
            w.writerow([name, 'normal' if truth[name] == 'normal' else 'abnormal', 'stand-in', '2026-01-%02dT09:00:00Z' % int(sys.argv[4])])
PY
  labels=$((labels + $(($(wc -l <"$work/answers$round.csv") - 1))))
  "$sentinel" labels import --workspace "$ws" "$work/answers$round.csv" >/dev/null
  "$sentinel" retrain --workspace "$ws" "${extra[@]}" >/dev/null 2>&1
  evaluate "$round" "$labels"
done
