"""The DDP communication hook (``runner/ddp_hook.py``) equals the runner's ``ef_sgd``.

Two gloo processes train a small MLP under ``DistributedDataParallel`` with the hook and a torch
optimizer, each on its own batches; in this process the runner's ``EFSGD`` object (with the
simulator's communicator, 2 workers, the same ``ScopedCompressor`` the trainer builds) is stepped by
hand with the gradients of the same batches. After the steps the parameters must be identical
(float32, one thread) and the hook's bit totals, averaged over the ranks, must equal the sum of
EFSGD's per-step ``bits_up`` / ``bits_down``. The cases cover each EF mode, both scopes, several DDP
buckets, shared randomness (random-k), variable-size payloads (hard threshold, padded allgather)
and an allreduce compressor (RBGS).

Run as a script (``python tests/test_ddp_hook.py OUT_DIR CLI_RUN_DIR``) it is the two DDP processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytestmark = pytest.mark.xdist_group("ddp_hook")  # one xdist worker: the module's fixtures run once
STEPS = 5
WORLD = 2
BATCH = 16
SEED = 3
SMALL_BUCKETS_MB = 0.0005  # ~500 bytes: the MLP's 4 tensors spread over several DDP buckets
ONE_BUCKET_MB = 25


def case(
    comp: str,
    params: dict,
    ef: str,
    scope: str,
    bucket_mb: float,
    lr: float,
    momentum: float = 0.0,
    wd: float = 0.0,
    opt: str = "sgd",
) -> dict:
    """A compressor with its params, an EF mode, a scope, DDP's bucket cap and the optimizer's settings
    (momentum and weight decay are local_momentum's own with that mode, the optimizer's otherwise)."""
    return {
        "comp": comp,
        "params": params,
        "ef": ef,
        "scope": scope,
        "bucket_mb": bucket_mb,
        "lr": lr,
        "momentum": momentum,
        "wd": wd,
        "opt": opt,
    }


CASES = {
    "topk-classic-layer": case("topk", {"ratio": 0.1}, "classic", "layer", SMALL_BUCKETS_MB, 0.1, 0.9, 1e-3),
    "topk-scaled-model": case("topk", {"k": 40, "ratio": None}, "scaled", "model", ONE_BUCKET_MB, 0.05),
    "randk-none-layer": case("randk", {"ratio": 0.2}, "none", "layer", SMALL_BUCKETS_MB, 0.1),
    "threshold-powersgd-layer": case("threshold", {"lam": 0.02}, "powersgd", "layer", SMALL_BUCKETS_MB, 0.1, 0.9),
    "rbgs-local_momentum-layer": case(
        "rbgs", {"ratio": 4}, "local_momentum", "layer", SMALL_BUCKETS_MB, 0.1, 0.9, 1e-3
    ),
    "topk-classic-adam": case("topk", {"ratio": 0.1}, "classic", "layer", ONE_BUCKET_MB, 0.01, wd=1e-3, opt="adam"),
}


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 24), nn.Tanh(), nn.Linear(24, 5))


def batch(worker: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 * worker + step)
    return torch.randn(BATCH, 10, generator=gen), torch.randint(5, (BATCH,), generator=gen)


# -- the two DDP processes -----------------------------------------------------------------------


def train_with_hook(rank: int, case: dict) -> dict:
    from torch.nn.parallel import DistributedDataParallel as DDP

    from compress_train.runner.ddp_hook import ddp_hook

    model = DDP(make_model(), bucket_cap_mb=case["bucket_mb"])
    local_momentum = case["ef"] == "local_momentum"
    if case["opt"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=case["lr"], weight_decay=case["wd"])
    else:
        opt = torch.optim.SGD(
            model.parameters(),
            lr=case["lr"],
            momentum=0.0 if local_momentum else case["momentum"],
            weight_decay=0.0 if local_momentum else case["wd"],
        )
    own = {"momentum": case["momentum"], "weight_decay": case["wd"]} if local_momentum else {}
    state, hook = ddp_hook(
        case["comp"],
        model.parameters(),
        ef=case["ef"],
        lr=lambda: opt.param_groups[0]["lr"],
        seed=SEED,
        scope=case["scope"],
        compressor_params=case["params"],
        **own,
    )
    buckets = set()

    def counting_hook(state, bucket):
        buckets.add(bucket.index())
        return hook(state, bucket)

    model.register_comm_hook(state, counting_hook)
    for step in range(STEPS):
        x, y = batch(rank, step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {
        "params": flat,
        "bits_up": state.bits_up,
        "bits_down": state.bits_down,
        "steps": state.step,
        "elements_up": state.elements_up,
        "wire_bytes": state.wire_bytes,
        "buckets": len(buckets),
    }


def model_scope_error(rank: int) -> str:
    """The message when scope='model' meets a model DDP split into several buckets."""
    try:
        train_with_hook(rank, case("topk", {"ratio": 0.1}, "classic", "model", SMALL_BUCKETS_MB, 0.1))
    except (ValueError, RuntimeError) as err:
        return str(err)
    return ""


def train_like_the_cli(rank: int, run_dir: Path) -> dict:
    """The CLI run's own task (its frozen config.yaml: model, initialisation, this worker's batches and
    dropout seeds, as ``NetworkTask.local_gradients`` draws them) trained under DDP with the hook."""
    from omegaconf import OmegaConf
    from torch.nn.parallel import DistributedDataParallel as DDP

    from compress_train.algorithms.ef_sgd import EFSGD
    from compress_train.runner.ddp_hook import ddp_hook
    from compress_train.runner.dist import DistCommunicator
    from compress_train.runner.tasks import select_task
    from compress_train.runner.tasks.network import dropout_seed

    cfg = OmegaConf.load(run_dir / "config.yaml")
    cpu = torch.device("cpu")
    task = select_task(cfg)(cfg, DistCommunicator(cpu), lambda message: None, cpu, EFSGD.needs)
    assert task.data.augment is None and not task.buffers  # nothing else the trainer's step does
    model = DDP(task.model, bucket_cap_mb=ONE_BUCKET_MB)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.algo.lr, momentum=cfg.algo.momentum)
    state, hook = ddp_hook(
        cfg.compressor.name,
        model.parameters(),
        ef=cfg.algo.ef,
        lr=cfg.algo.lr,
        seed=cfg.seed,
        scope=cfg.compressor.scope,
        compressor_params={"ratio": cfg.compressor.ratio, "k": cfg.compressor.k},
    )
    model.register_comm_hook(state, hook)
    for step in range(cfg.train.max_steps):
        idx = torch.from_numpy(task.streams[rank].next())
        torch.manual_seed(dropout_seed(cfg.seed, step, rank))
        opt.zero_grad()
        F.cross_entropy(model(task.x_train[idx]), task.y_train[idx]).backward()
        opt.step()
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {
        "params": flat,
        "bits_up": state.bits_up,
        "bits_down": state.bits_down,
        "steps": state.step,
        "elements_up": state.elements_up,
        "wire_bytes": state.wire_bytes,
    }


def run_rank(rank: int, out_dir: str, cli_run_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=WORLD)
    try:
        results = {name: train_with_hook(rank, case) for name, case in CASES.items()}
        results["cli"] = train_like_the_cli(rank, Path(cli_run_dir))
        results["model-scope-over-buckets"] = model_scope_error(rank)  # last: it leaves a DDP model mid-backward
    finally:
        dist.destroy_process_group()
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")


# -- the runner's EFSGD, stepped by hand -----------------------------------------------------------


def train_with_efsgd(case: dict) -> dict:
    from compress_train.algorithms.communicator import SimCommunicator
    from compress_train.algorithms.ef_sgd import EFSGD
    from compress_train.compressors.registry import build
    from compress_train.compressors.scope import ScopedCompressor
    from compress_train.runner.tasks.flat import FlatModel

    model = make_model()
    flat = FlatModel(model)
    comm = SimCommunicator(WORLD)
    scoped = ScopedCompressor(build(case["comp"], case["params"]), flat.layer_sizes, case["scope"])
    algo = EFSGD(
        flat.params,
        comm,
        scoped,
        seed=SEED,
        lr=case["lr"],
        ef=case["ef"],
        momentum=case["momentum"],
        weight_decay=case["wd"],
        optimizer=case["opt"],
    )
    bits_up = bits_down = elements_up = 0.0
    for step in range(STEPS):
        grads = {}
        for w in range(WORLD):
            x, y = batch(w, step)
            flat.zero_grad()
            F.cross_entropy(model(x), y).backward()
            grads[w] = flat.gradient().clone()
        report = algo.step(grads, step)
        bits_up, bits_down, elements_up = (
            bits_up + report.bits_up,
            bits_down + report.bits_down,
            elements_up + report.elements_up,
        )
    return {
        "params": flat.params.clone(),
        "bits_up": bits_up,
        "bits_down": bits_down,
        "elements_up": elements_up,
        "wire_bytes": comm.wire_bytes,
    }


CLI_RUN = (
    "launcher=sim",
    f"workers={WORLD}",
    "algo=ef_sgd",
    "compressor=topk",
    "compressor.ratio=0.05",
    "algo.momentum=0.9",
    "train.max_steps=4",
    "train.batch_size=16",
    "threads=1",
)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """``compress-train algo=ef_sgd compressor=topk ...`` (mnist_cnn, MNIST subset, 2 simulated workers)."""
    from cli_helpers import run_cli

    run = tmp_path_factory.mktemp("cli") / "run"
    proc = run_cli(f"hydra.run.dir={run}", *CLI_RUN, cwd=run.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return run


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory, cli_run) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp_hook")
    proc = subprocess.run(
        [sys.executable, __file__, str(out), str(cli_run)],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cli_run.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.slow
@pytest.mark.dist
def test_ddp_hook_equals_the_cli_run(ddp_results, cli_run):
    """The same parameters after the run's 4 steps as the CLI's final checkpoint, the same totals."""
    from cli_helpers import summary

    (final,) = (cli_run / "checkpoints").iterdir()
    shared = torch.load(final / "shared.pt", weights_only=True)
    ranks = [r["cli"] for r in ddp_results]
    assert shared["step"] == 4 and all(r["steps"] == 4 for r in ranks)
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])
    assert torch.equal(ranks[0]["params"], shared["params"])
    totals = summary(cli_run)["totals"]
    for key in ("bits_up", "bits_down", "elements_up", "wire_bytes"):
        assert sum(r[key] for r in ranks) / WORLD == totals[key], key


@pytest.mark.slow
@pytest.mark.dist
@pytest.mark.parametrize("name", list(CASES))
def test_ddp_hook_equals_ef_sgd(name, ddp_results, one_thread):
    case = CASES[name]
    ranks = [r[name] for r in ddp_results]
    ref = train_with_efsgd(case)
    assert all(r["steps"] == STEPS for r in ranks)
    if case["bucket_mb"] == SMALL_BUCKETS_MB:  # the per-layer path really crossed DDP buckets
        assert ranks[0]["buckets"] > 1
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])
    # Rounding only: torch's Adam divides by sqrt(1 - b2^t) after the sqrt, EFSGD before; local_momentum's
    # step is x.sub_(lr * avg) in EFSGD, x.add_(avg, alpha=-lr) in torch's SGD.
    if case["opt"] == "adam" or case["ef"] == "local_momentum":
        torch.testing.assert_close(ranks[0]["params"], ref["params"], rtol=1e-6, atol=1e-7)
    else:
        assert torch.equal(ranks[0]["params"], ref["params"])
    assert not torch.equal(ref["params"], torch.cat([p.detach().reshape(-1) for p in make_model().parameters()]))
    for key in ("bits_up", "bits_down", "elements_up"):  # per worker, mean over workers, as the runner counts
        assert sum(r[key] for r in ranks) / WORLD == ref[key], key
    if ranks[0]["buckets"] == 1:  # one exchange per step: the same bytes on the wire as the runner's
        assert ranks[0]["wire_bytes"] == ref["wire_bytes"]


@pytest.mark.slow
@pytest.mark.dist
def test_model_scope_needs_one_bucket(ddp_results):
    for r in ddp_results:
        assert "scope='model' compresses the whole model at once" in r["model-scope-over-buckets"]
        assert "`bucket_cap_mb`" in r["model-scope-over-buckets"]


def test_ddp_hook_rejects_bad_arguments():
    from compress_train.runner.ddp_hook import ddp_hook

    params = list(make_model().parameters())
    with pytest.raises(ValueError, match=r"`ef` must be one of \[.*'classic'.*\], but is 'bogus'"):
        ddp_hook("topk", params, ef="bogus")
    with pytest.raises(ValueError, match="`lr` must be given with ef='scaled'"):
        ddp_hook("topk", params, ef="scaled")
    with pytest.raises(ValueError, match="`lr` must be a number > 0 or a callable"):
        ddp_hook("topk", params, ef="scaled", lr=-1.0)
    with pytest.raises(ValueError, match=r"`scope` must be one of \['model', 'layer'\], but is 'bucket'"):
        ddp_hook("topk", params, ef="classic", scope="bucket")
    with pytest.raises(ValueError, match="exactly one of `ratio` and `k`"):
        ddp_hook("topk", params, ef="classic", compressor_params={"ratio": 0.1, "k": 3})
    with pytest.raises(ValueError, match="`compressor.name` must be one of"):
        ddp_hook("nope", params, ef="classic")
    with pytest.raises(ValueError, match="`momentum` and `weight_decay` are local_momentum's"):
        ddp_hook("topk", params, ef="classic", momentum=0.9)


if __name__ == "__main__":
    import torch.multiprocessing as mp

    mp.spawn(run_rank, args=(sys.argv[1], sys.argv[2]), nprocs=WORLD, join=True)


def test_the_hooks_defaults_are_the_runners_ef_sgd_at_layer_scope():
    """The README's snippet: ddp_hook with its defaults equals ``algo=ef_sgd compressor.scope=layer``."""
    import inspect

    from hydra import compose, initialize_config_module

    from compress_train.runner.ddp_hook import ddp_hook

    defaults = {k: p.default for k, p in inspect.signature(ddp_hook).parameters.items()}
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["algo=ef_sgd", "compressor.scope=layer"])
        plain = compose(config_name="config", overrides=["algo=ef_sgd"])
    assert (defaults["ef"], defaults["scope"]) == (cfg.algo.ef, cfg.compressor.scope) == ("scaled", "layer")
    assert plain.compressor.scope == "model"  # hence the snippet names the scope
    assert (defaults["momentum"], defaults["weight_decay"], defaults["seed"]) == (0.0, 0.0, cfg.seed)
