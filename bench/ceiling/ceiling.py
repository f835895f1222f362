#!/usr/bin/python3
"""A supervised reference for the learning benchmark on cxr8.

How far can radiologists' labels take a small convolutional network trained
on them directly, with no anomaly detector at all? It trains a four-stage CNN
(3x3 convolution, batch norm, ReLU, 2x2 max pool; global average pool,
dropout, one logit) with binary cross-entropy on the `seed` normals plus the
`pool` cases with their labels (all of them, or --pool-labels drawn at random),
and reports ROC-AUC on `dev`. The only augmentation is a random shift of up to
1/16 of the side. Nothing is tuned on `dev`: the recipe is fixed and every
checkpoint asked for is printed.

It prints one JSON object per evaluation:
  {"size", "pool_labels", "draw", "seed", "epoch", "roc_auc", "normal_share_lowest"}
where normal_share_lowest gives, for the 10, 20 and 40 `dev` cases the network
finds most surely normal, the share that truly are: how pure a set admitted
by the most confident supervised reader can be on these labels.

Usage:
  /usr/bin/python3 bench/ceiling/ceiling.py [--size 64] [--pool-labels 0]
      [--draws 1] [--seeds 1,2,3] [--epochs 40] [--data ../shared/data/cxr8]

Needs python3-torch, python3-numpy and python3-pil (Debian).
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from PIL import Image


def roc_auc(y, p):
    """ROC-AUC with tied scores given their average rank."""
    y = np.asarray(y, bool)
    p = np.asarray(p, np.float64)
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sp = p[order]
    i = 0
    while i < len(sp):
        j = i
        while j + 1 < len(sp) and sp[j + 1] == sp[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1 = y.sum()
    n0 = len(y) - n1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def normal_share_lowest(y, p, ks=(10, 20, 40)):
    """Share of truly normal cases among the k lowest-scored, for each k."""
    order = np.argsort(np.asarray(p, np.float64), kind="mergesort")
    y = np.asarray(y, bool)[order]
    return {str(k): round(float(1 - y[:k].mean()), 3) for k in ks}


def network():
    def stage(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(stage(1, 16), stage(16, 32), stage(32, 64), stage(64, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cxr8"))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pool-labels", type=int, default=0, help="pool cases labelled, drawn at random (0: all)")
    ap.add_argument("--draws", type=int, default=1, help="random draws of the pool labels")
    ap.add_argument("--seeds", default="1,2,3", help="training seeds")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--every", type=int, default=10, help="evaluate every this many epochs")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    labels = os.path.join(a.data, "labels.csv")
    if not os.path.exists(labels):
        sys.exit(f"{labels} not found: give --data")
    torch.set_num_threads(a.threads)
    rows = list(csv.DictReader(open(labels)))
    s = a.size

    def load(f):
        im = Image.open(os.path.join(a.data, "images", f)).convert("L").resize((s, s), Image.BILINEAR)
        x = np.asarray(im, np.float32) / 255.0
        return (x - x.mean()) / (x.std() + 1e-6)

    pix = {r["file"]: load(r["file"]) for r in rows if r["split"] in ("seed", "pool", "dev")}

    def tensors(rs):
        x = torch.tensor(np.stack([pix[r["file"]] for r in rs]))[:, None]
        y = np.array([r["finding"] != "normal" for r in rs])
        return x, y

    seed_rows = [r for r in rows if r["split"] == "seed"]
    pool_rows = [r for r in rows if r["split"] == "pool"]
    xdev, ydev = tensors([r for r in rows if r["split"] == "dev"])
    for draw in range(1, a.draws + 1):
        pool = pool_rows
        if a.pool_labels:
            pick = np.random.RandomState(draw).permutation(len(pool_rows))[:a.pool_labels]
            pool = [pool_rows[i] for i in pick]
        xtr, ytr = tensors(seed_rows + pool)
        ytr = torch.tensor(ytr, dtype=torch.float32)
        for seed in [int(v) for v in a.seeds.split(",")]:
            torch.manual_seed(seed)
            shift = np.random.RandomState(seed)
            m = network()
            opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=1e-3)
            for epoch in range(1, a.epochs + 1):
                m.train()
                perm = torch.randperm(len(xtr))
                for i in range(0, len(perm), 32):
                    idx = perm[i:i + 32]
                    dx, dy = shift.randint(-s // 16, s // 16 + 1, 2)
                    xb = torch.roll(xtr[idx], (int(dx), int(dy)), (2, 3))
                    loss = nn.functional.binary_cross_entropy_with_logits(m(xb).squeeze(1), ytr[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                if epoch % a.every == 0 or epoch == a.epochs:
                    m.eval()
                    with torch.no_grad():
                        p = m(xdev).squeeze(1).numpy()
                    print(json.dumps({"size": s, "pool_labels": len(pool), "draw": draw, "seed": seed,
                                      "epoch": epoch, "roc_auc": round(roc_auc(ydev, p), 4),
                                      "normal_share_lowest": normal_share_lowest(ydev, p)}), flush=True)


if __name__ == "__main__":
    main()
