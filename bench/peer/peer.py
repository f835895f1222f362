#!/usr/bin/python3
"""PyTorch peer of Sentinel's detector, for `sentinel bench compare`.

The same network as detector/arch.go: per encoder stage a 3x3 convolution with
stride 2, padding 1, bias and ReLU; per decoder stage a nearest 2x upsample, a
3x3 convolution with stride 1, padding 1 and bias, ReLU on all but the last,
which outputs one linear channel at the input size. Scoring follows
detector/score.go: the SWAG mean's encoder feeds the PatchCore memory bank
(3x3 average pooled stage MemoryStage and MemoryStage+1, the coarser resized
bilinearly, kNN distance), and S sampled networks reconstruct the image
(squared error, Gaussian blur, top mean). The S samples run as one grouped
convolution per layer (groups=S), the batched way.

Written as a competent PyTorch engineer would: torch.set_num_threads,
torch.set_flush_denormal(True), torch.inference_mode() for everything but
training, contiguous float32 inputs, a warm-up before every timing.

Modes (all print one JSON object on stdout):
  bench     time a training step, inference at batch 1 and B, SWAG scoring of
            one image and kNN queries against banks of the given sizes
  train     run --steps training steps (the caller reads peak RSS)
  pipeline  pydicom+GDCM decode, display pipeline, area resample, score, over
            every file of --dicom; images per second

Run with Debian's interpreter, /usr/bin/python3 (python3-torch,
python3-pydicom, python3-gdcm, python3-numpy, and libopenblas0-pthread for
the matrix products).
"""

import argparse
import glob
import json
import math
import os
import resource
import statistics
import sys
import time

# OpenBLAS (Debian's python3-torch does its matrix products through the
# system BLAS: install libopenblas0-pthread, or they run in the reference
# BLAS at a fraction of the speed) keeps a thread pool of its own: give it
# the same number of threads as torch, set before torch loads it.
_THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "2"
os.environ.setdefault("OPENBLAS_NUM_THREADS", _THREADS)
os.environ.setdefault("OMP_NUM_THREADS", _THREADS)
# Threads that sleep at a barrier instead of spinning: on a shared 2-core
# machine a spinning OpenMP thread starves the thread it waits for, and a
# forward pass measured here went from 2 ms to 80 ms with the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["bench", "train", "pipeline"])
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--channels", default="8,16,32")
    p.add_argument("--batch", type=int, default=32, help="training and large inference batch")
    p.add_argument("--swag-samples", type=int, default=8)
    p.add_argument("--memory-stage", type=int, default=1)
    p.add_argument("--neighbours", type=int, default=1)
    p.add_argument("--bank", type=int, default=2500, help="memory bank patches for scoring")
    p.add_argument("--knn-banks", default="10000,100000,1000000")
    p.add_argument("--recon-blur", type=float, default=1.0)
    p.add_argument("--iters", type=int, default=10, help="timed iterations per figure (median)")
    p.add_argument("--steps", type=int, default=20, help="training steps in train mode")
    p.add_argument("--dicom", default="../shared/data/cxr8/dicom")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


# ---------------------------------------------------------------- network


def layers(channels):
    """(in, out, stride, upsample, relu) per convolution, as arch.go's layers()."""
    ls, cin = [], 1
    for c in channels:
        ls.append((cin, c, 2, False, True))
        cin = c
    for i in range(len(channels) - 2, -2, -1):
        out = channels[i] if i >= 0 else 1
        ls.append((cin, out, 1, True, i >= 0))
        cin = out
    return ls


class AE(torch.nn.Module):
    """The autoencoder; forward returns the reconstruction, and with
    stages=(a, b) the encoder outputs of those stages instead (the decoder
    is not run: scoring only needs the mean network's features)."""

    def __init__(self, channels):
        super().__init__()
        self.spec = layers(channels)
        self.n_enc = len(channels)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(i, o, 3, stride=s, padding=1) for i, o, s, _, _ in self.spec)
        for k, conv in enumerate(self.convs):
            fan_in = conv.in_channels * 9
            std = math.sqrt((1 if k == len(self.convs) - 1 else 2) / fan_in)
            torch.nn.init.normal_(conv.weight, 0, std)
            torch.nn.init.zeros_(conv.bias)

    def forward(self, x, stages=None):
        feats = []
        for k, ((_, _, _, up, relu), conv) in enumerate(zip(self.spec, self.convs)):
            if up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = conv(x)
            if relu:
                x = F.relu(x)
            if stages is not None and k < self.n_enc:
                if k in stages:
                    feats.append(x)
                if k == max(stages):
                    return feats
        return x


class GroupedAE:
    """S weight samples of the autoencoder run together: each layer is one
    convolution with groups=S over the S samples' channels stacked."""

    def __init__(self, samples):
        self.s = len(samples)
        self.spec = samples[0].spec
        self.w, self.b = [], []
        for k in range(len(self.spec)):
            self.w.append(torch.cat([m.convs[k].weight for m in samples]).detach().contiguous())
            self.b.append(torch.cat([m.convs[k].bias for m in samples]).detach().contiguous())

    def __call__(self, x):
        """x is (B, 1, H, W); returns (B, S, H, W), one reconstruction per sample."""
        h = x.expand(-1, self.s, -1, -1).contiguous()
        for (_, _, stride, up, relu), w, b in zip(self.spec, self.w, self.b):
            if up:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = F.conv2d(h, w, b, stride=stride, padding=1, groups=self.s)
            if relu:
                h = F.relu(h)
        return h


def swag_samples(mean, n, seed):
    """n perturbed copies of mean: SWAG draws its samples once when the model
    is loaded, so only their count matters to scoring time."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        m = AE.__new__(AE)
        torch.nn.Module.__init__(m)
        m.spec, m.n_enc = mean.spec, mean.n_enc
        m.convs = torch.nn.ModuleList()
        for conv in mean.convs:
            c = torch.nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=conv.stride, padding=1)
            with torch.no_grad():
                c.weight.copy_(conv.weight + 0.01 * torch.randn(conv.weight.shape, generator=g))
                c.bias.copy_(conv.bias)
            m.convs.append(c)
        out.append(m)
    return out


# ---------------------------------------------------------------- scoring


def blur_kernel(sigma):
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    return torch.exp(-t * t / (2 * sigma * sigma)), r


def gaussian_blur(x, sigma):
    """Separable blur of (N, 1, H, W) maps, renormalised at the borders like
    detector/maps.go (a constant map stays constant)."""
    if sigma <= 0:
        return x
    k, r = blur_kernel(sigma)
    kh, kv = k.view(1, 1, 1, -1), k.view(1, 1, -1, 1)
    ones = torch.ones_like(x[:1])
    num = F.conv2d(F.conv2d(x, kh, padding=(0, r)), kv, padding=(r, 0))
    den = F.conv2d(F.conv2d(ones, kh, padding=(0, r)), kv, padding=(r, 0))
    return num / den


def patch_features(fine, coarse):
    """PatchCore features: both maps 3x3 average pooled, the coarser resized
    bilinearly to the finer grid, concatenated per position: (g*g, cf+cc)."""
    a = F.avg_pool2d(fine, 3, 1, 1, count_include_pad=False)
    b = F.avg_pool2d(coarse, 3, 1, 1, count_include_pad=False)
    b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
    f = torch.cat([a, b], 1)[0]
    return f.flatten(1).t().contiguous()


# Bank rows per distance matrix. Measured on the development machine
# (256 queries × 48 features, bank 100k, 2 threads, median of 5): 65536
# rows 566 ms, 16384 rows 54 ms, 4096 rows 62 ms, 1024 rows 89 ms;
# torch.cdist + min over 16384-row chunks 70 ms. At 65536 rows the
# 64 MiB distance matrix leaves the caches; 16384 is the fastest.
KNN_CHUNK = 16384


def knn(q, bank, bank_sq, k):
    """Mean distance of each query row to its k nearest bank rows, by
    |q|^2 + |b|^2 - 2 q.b over bank chunks with a running top-k."""
    q_sq = (q * q).sum(1, keepdim=True)
    best = None
    for c0 in range(0, bank.shape[0], KNN_CHUNK):
        b = bank[c0:c0 + KNN_CHUNK]
        d = torch.addmm(q_sq + bank_sq[c0:c0 + KNN_CHUNK], q, b.t(), beta=1, alpha=-2)
        d = d.topk(min(k, d.shape[1]), dim=1, largest=False).values
        best = d if best is None else torch.cat([best, d], 1).topk(k, dim=1, largest=False).values
    return best.clamp_min(0).sqrt().mean(1)


class Scorer:
    def __init__(self, args, mean, bank):
        self.args = args
        self.mean = mean
        self.group = GroupedAE(swag_samples(mean, args.swag_samples, args.seed + 1)) if args.swag_samples > 0 else None
        self.bank = bank
        self.bank_sq = (bank * bank).sum(1)
        self.st = args.memory_stage

    def score(self, x):
        """x is (1, 1, side, side); returns the reconstruction and memory
        scores and their maps, as detector.Model.analyse measures them."""
        side = x.shape[-1]
        fine, coarse = self.mean(x, stages=(self.st, self.st + 1))
        ps = knn(patch_features(fine, coarse), self.bank, self.bank_sq, self.args.neighbours)
        g = fine.shape[-1]
        mem_map = F.interpolate(ps.view(1, 1, g, g), size=(side, side), mode="bilinear", align_corners=False)
        mem_map = gaussian_blur(mem_map, 4 * side / 224)
        recon = self.group(x) if self.group is not None else self.mean(x)
        err = (recon - x).square().transpose(0, 1)  # (S, 1, side, side)
        err = gaussian_blur(err, self.args.recon_blur)
        recon_scores = err.flatten(1).mean(1)
        return recon_scores.mean().item(), ps.mean().item(), err.mean(0), mem_map


# ---------------------------------------------------------------- timing


def median_ms(fn, iters, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def train_step_fn(model, batch, side, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batch, 1, side, side), generator=g).contiguous()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), x)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def settings(args):
    config = torch.__config__.show().splitlines()
    blas = [ln.strip() for ln in config if "BLAS_INFO" in ln]
    capability = [ln.split(":", 1)[1].strip() for ln in config if "CPU capability usage" in ln]
    return {
        # The instruction sets the peer may use: ATen's own kernels, and the
        # variables that cap OpenBLAS's and oneDNN's (unset: the CPU's best).
        "cpu_capability": capability[0] if capability else None,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "blas": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3") if blas and "generic" in blas[0] else "torch-bundled",
        "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
        "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "flush_denormal": True, "inference_mode": True,
        "side": args.side, "channels": [int(c) for c in args.channels.split(",")],
        "batch": args.batch, "swag_samples": args.swag_samples, "swag_batched": "grouped conv, groups=S",
        "memory_stage": args.memory_stage, "neighbours": args.neighbours, "bank": args.bank,
        "knn": "addmm distances over %d-row chunks, running topk" % KNN_CHUNK, "iters": args.iters,
    }


def random_bank(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, d), generator=g).contiguous()


def run_bench(args, channels):
    side, out = args.side, {}
    torch.manual_seed(args.seed)
    model = AE(channels)
    out["train_step_ms"] = median_ms(train_step_fn(model, args.batch, side, args.seed), args.iters)
    model.eval()
    d = channels[args.memory_stage] + channels[args.memory_stage + 1]
    with torch.inference_mode():
        x1 = torch.rand((1, 1, side, side)).contiguous()
        xb = torch.rand((args.batch, 1, side, side)).contiguous()
        out["infer_b1_ms_per_image"] = median_ms(lambda: model(x1), args.iters * 5)
        out["infer_bn_ms_per_image"] = median_ms(lambda: model(xb), args.iters) / args.batch
        sc = Scorer(args, model, random_bank(args.bank, d, args.seed))
        out["swag_score_ms"] = median_ms(lambda: sc.score(x1), args.iters * 2)
        g = side >> (args.memory_stage + 1)
        q = torch.rand((g * g, d)).contiguous()
        knn_ms = {}
        for n in [int(v) for v in args.knn_banks.split(",") if v]:
            bank = random_bank(n, d, args.seed + n)
            bsq = (bank * bank).sum(1)
            # Three warm-up runs: after one, the first bank size measured
            # still paid for fresh pages on every call (51 ms instead of
            # 4 ms at 10k rows), until the allocator settled.
            knn_ms[str(n)] = median_ms(lambda: knn(q, bank, bsq, args.neighbours), max(3, args.iters // (1 + n // 100000)))
            if n == 100000:
                sc100 = Scorer(args, model, bank)
                out["swag_score_bank100k_ms"] = median_ms(lambda: sc100.score(x1), args.iters)
            del bank, bsq
        out["knn_ms"] = knn_ms
        out["knn_queries"] = g * g
    return out


def run_train(args, channels):
    torch.manual_seed(args.seed)
    step = train_step_fn(AE(channels), args.batch, args.side, args.seed)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    return {"steps": args.steps, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------- pipeline


def setup_pydicom():
    import pydicom
    from pydicom.pixel_data_handlers import gdcm_handler, numpy_handler, rle_handler
    # numpy for native data, pydicom's own RLE handler (2.3's GDCM handler
    # does not take RLE), GDCM for JPEG lossless and JPEG-LS.
    pydicom.config.pixel_data_handlers = [numpy_handler, rle_handler, gdcm_handler]
    return pydicom


def display(ds, arr):
    """The display pipeline of dicomio/display.go: Modality LUT, the file's
    window, else the full stored range for data of at most 8 bits, else the
    0.5th-99.5th percentile window; MONOCHROME1 inverted so 1 is bright."""
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    m = arr.astype(np.float32) * slope + intercept
    wc, ww = ds.get("WindowCenter"), ds.get("WindowWidth")
    if wc is not None and ww is not None:
        c = float(wc[0] if wc.VM > 1 else wc.value)
        w = float(ww[0] if ww.VM > 1 else ww.value)
        y = (m - (c - 0.5)) / max(w - 1, 1) + 0.5
    else:
        bits = int(ds.BitsStored)
        if bits <= 8:
            lo, hi = 0.0, float(2 ** bits - 1)
            lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
        else:
            lo, hi = np.percentile(m, [0.5, 99.5])
        y = (m - lo) / max(hi - lo, 1e-12)
    y = np.clip(y, 0, 1)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        y = 1 - y
    return y


def run_pipeline(args, channels):
    pydicom = setup_pydicom()
    files = sorted(glob.glob(os.path.join(args.dicom, "*.dcm")))
    if not files:
        raise SystemExit("peer: no .dcm files in %s" % args.dicom)
    torch.manual_seed(args.seed)
    model = AE(channels).eval()
    d = channels[args.memory_stage] + channels[args.memory_stage + 1]
    sc = Scorer(args, model, random_bank(args.bank, d, args.seed))
    side = args.side

    def one(path):
        ds = pydicom.dcmread(path)
        img = torch.from_numpy(np.ascontiguousarray(display(ds, ds.pixel_array)))
        x = F.interpolate(img[None, None], size=(side, side), mode="area").contiguous()
        return sc.score(x)

    with torch.inference_mode():
        one(files[0])  # warm-up
        ok, failed, t0 = 0, [], time.perf_counter()
        for rep in range(args.iters):
            for f in files:
                try:
                    one(f)
                    ok += 1
                except Exception as e:  # noqa: BLE001 - a file the peer cannot read is counted, not fatal
                    if rep == 0:
                        failed.append("%s: %s" % (os.path.basename(f), e))
        secs = time.perf_counter() - t0
    return {"files": len(files), "decoded_per_pass": ok // max(args.iters, 1), "failed": failed,
            "passes": args.iters, "seconds": secs, "images_per_s": ok / secs}


def vm_hwm_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    channels = [int(c) for c in args.channels.split(",")]
    out = {"mode": args.mode, "settings": settings(args)}
    if args.mode == "bench":
        out.update(run_bench(args, channels))
    elif args.mode == "train":
        out.update(run_train(args, channels))
    else:
        out.update(run_pipeline(args, channels))
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # VmHWM is this process's own peak: ru_maxrss can carry the peak of the
    # parent it was forked from across exec.
    out["vm_hwm_mib"] = vm_hwm_kib() / 1024
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
