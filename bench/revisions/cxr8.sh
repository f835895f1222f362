#!/usr/bin/env bash
# Revised reports on cxr8, with the product's commands: the running agent
# reports the `pool` films with a model trained on the `seed` normals; every
# fourth pool film's label is imported and `sentinel retrain` is run beside
# it; the agent takes the promoted model up and revises the reports it
# decides otherwise. Prints the revisions, and the reports of the films no
# one labelled before and after, against their true labels.
#
#   bench/revisions/cxr8.sh [WORKDIR]
#
# Environment: SENTINEL (the binary; default: built from this checkout),
# DATA (default ../shared/data/cxr8), PORT (18484). Needs /usr/bin/python3
# (Debian) and curl.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$(mktemp -d)}"
data="$(cd "${DATA:-$root/../shared/data/cxr8}" && pwd)"
port="${PORT:-18484}"
[ -f "$data/labels.csv" ] || { echo "$data/labels.csv not found: set DATA" >&2; exit 1; }
sentinel="${SENTINEL:-}"
if [ -z "$sentinel" ]; then
  sentinel="$work/sentinel"
  (cd "$root" && go build -o "$sentinel" ./cmd/sentinel)
fi
rm -rf "$work/ws" "$work/inbox"
mkdir -p "$work/inbox"
"$sentinel" train --workspace "$work/ws" --normals "$data/images" --labels "$data/labels.csv" --split seed --epochs 10 --seed 1 >/dev/null 2>&1
/usr/bin/python3 - "$data" "$work" <<'PY'
import csv, os, shutil, sys
data, work = sys.argv[1], sys.argv[2]
rows = [r for r in csv.DictReader(open(os.path.join(data, 'labels.csv'))) if r['split'] == 'pool']
for r in rows:
    # Copies: the agent refuses symbolic links in its drop folders.
    shutil.copy2(os.path.join(data, 'images', r['file']), os.path.join(work, 'inbox', r['file']))
with open(os.path.join(work, 'answers.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['file', 'label', 'reader', 'time'])
    for i, r in enumerate(rows):
        if i % 4 == 0:
            w.writerow([r['file'], 'normal' if r['finding'] == 'normal' else 'abnormal', 'r1', '2026-01-01T00:00:00Z'])
PY
cat > "$work/agent.toml" <<T
workspace = "$work/ws"
[paths]
inbox = ["$work/inbox"]
[ingest]
stable_for = "1s"
poll_interval = "100ms"
[learning]
retrain_every_labels = 0
retrain_every_admissions = 0
[http]
addr = "127.0.0.1:$port"
T
"$sentinel" run --config "$work/agent.toml" > "$work/run.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
handled() { curl -s "localhost:$port/metrics" | awk '/^sentinel_files_processed_total/ {n += $2} END {print n + 0}'; }
until [ "$(handled)" = "466" ]; do sleep 2; done
"$sentinel" labels import --workspace "$work/ws" "$work/answers.csv" | tail -1
"$sentinel" retrain --workspace "$work/ws" --epochs 10 2>/dev/null | tail -1
until grep -q "reports compared with the model in use" "$work/run.log"; do sleep 1; done
grep "reports compared with the model in use" "$work/run.log"
curl -s "localhost:$port/api/revisions?limit=10000" > "$work/revisions.json"
kill -TERM $pid
wait $pid || true
trap - EXIT
/usr/bin/python3 - "$data" "$work" <<'PY'
import collections, csv, os, sqlite3, sys
data, work = sys.argv[1], sys.argv[2]
truth = {r['file']: 'normal' if r['finding'] == 'normal' else 'abnormal' for r in csv.DictReader(open(os.path.join(data, 'labels.csv')))}
labelled = {r['file'] for r in csv.DictReader(open(os.path.join(work, 'answers.csv')))}
db = sqlite3.connect(os.path.join(work, 'ws', 'state.db'))
first, last = {}, {}
for path, rev, dec in db.execute('SELECT i.path, r.revision, r.decision FROM reports r JOIN instances i ON i.instance_id = r.instance_id ORDER BY r.id'):
    f = os.path.basename(path)
    if rev == 1:
        first[f] = dec
    last[f] = dec
files = [f for f in first if f not in labelled]
c = collections.Counter((first[f], last[f], truth[f]) for f in files)
print('%d unlabelled films; revisions (before -> after, true label, count):' % len(files))
for k, v in sorted(c.items()):
    if k[0] != k[1]:
        print('  %-9s -> %-9s %-8s %d' % (k + (v,)))
def line(name, i):
    n = collections.Counter(k[i] for k in c.elements())
    t = collections.Counter(k[i] for k in c.elements() if k[i] == k[2])
    ab = sum(v for k, v in c.items() if k[2] == 'abnormal')
    print('%-7s abnormal %d (%.0f%% truly), normal %d (%.0f%% truly), uncertain %d; truly abnormal reported abnormal %d of %d' % (
        name, n['abnormal'], 100 * t['abnormal'] / max(n['abnormal'], 1), n['normal'], 100 * t['normal'] / max(n['normal'], 1),
        n['uncertain'], t['abnormal'], ab))
line('before', 0)
line('after', 1)
PY
