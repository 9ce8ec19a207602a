"""Measure the training steps per second of each model family at its presets' ci shape, for the
estimates ``compress-train list`` and ``--dry-run`` print (runner/speed.py holds the table).

    .venv/bin/python scripts/measure_speed.py [--steps 12] [--out DIR]

Each family runs the first job of one ci preset (threads=1, no evaluation, one metrics row per
step) for ``--steps`` iterations; the rate is taken over the steps after the first two (start-up
and first-touch costs left out). Prints one table line per family, ready for runner/speed.py.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import compress_train

# family -> the overrides of one job with the family's ci shape (workers x batch as its presets use)
SHAPES: dict[str, list[str]] = {
    "mnist_cnn": ["experiment=def/table1"],
    "cifar_cnn": ["experiment=comp_ams/fig3_cifar10"],
    "imdb_lstm": ["experiment=comp_ams/fig3_imdb"],
    "lstm_lm": ["experiment=hard_threshold/fig2_lstm"],
    "ncf": ["experiment=hard_threshold/fig2_ncf"],
    "logreg": ["experiment=hard_threshold/fig1"],
    "quadratic": ["experiment=aiade/rate"],
    "least_squares": ["experiment=aiade/sgd"],
    # paper-scale networks, measured on the SYNTHETIC CIFAR-10 stand-in (the same 32x32 input)
    "resnet18_cifar": ["dataset=cifar10", "dataset.synthetic=true", "model=resnet18_cifar", "train.batch_size=8"],
    "vgg16_bn_cifar": ["dataset=cifar10", "dataset.synthetic=true", "model=vgg16_bn_cifar", "train.batch_size=8"],
}


def measure(family: str, overrides: list[str], steps: int, out: Path) -> dict:
    summary = compress_train.run(
        [*overrides, f"train.max_steps={steps}", "train.log_every=1", "train.eval_every=1000000", "threads=1"],
        run_dir=out / family,
    )
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time_s" in r and r.get("step", 0) >= 2]
    rate = (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time_s"] - rows[0]["time_s"])
    config = (Path(summary["run_dir"]) / "config.yaml").read_text()
    import yaml

    cfg = yaml.safe_load(config)
    return {"workers": cfg["workers"], "batch": cfg["train"]["batch_size"], "steps_per_s": round(rate, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("families", nargs="*", default=list(SHAPES))
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="measure_speed_"))
    for family in args.families:
        m = measure(family, SHAPES[family], args.steps, out)
        print(f'    "{family}": ({m["workers"]}, {m["batch"]}, {m["steps_per_s"]}),', flush=True)


if __name__ == "__main__":
    main()
