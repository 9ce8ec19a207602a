"""What every task gives the trainer, with the defaults of a task that trains a network.

A task is built as ``Task(cfg, comm, log, device, needs)`` where ``needs`` is the algorithm's
declaration (``algorithms/base.py``'s ``Needs``). It holds the flat parameter vector the
algorithm updates (``params``, ``layer_sizes``, ``numel``), gives each local worker its gradient
(``local_gradients``), evaluates (``evaluate``), says what was trained (``summary_fields``) and
builds the algorithm's typed ``context``. The defaults below fit a network: gradients only at
the iterate, no problem constants, nothing to log beyond the loop's own metrics, no convergence
test, no model buffers to share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from compress_train.algorithms.base import AlgorithmContext, Needs, ParameterError

if TYPE_CHECKING:
    from torch import Tensor


class Task:
    params: Tensor  # the flat iterate, set by each task's __init__
    layer_sizes: list[int]  # numel of each parameter tensor, in order
    log_initial = False  # log a row for the starting point (step 0)
    supports_gradient_point = False  # can evaluate gradients away from the iterate
    supports_worker_points = False  # can take each worker's gradient at its own point
    constants: dict[str, Any] | None = None  # a convex problem's L, mu, ... for theory-driven methods
    decay_mask: Tensor | None = None  # 0 on normalisation layers, where the task knows them
    models: tuple[str, ...] = ()  # the only models this task trains (empty: checked elsewhere)
    models_are = ""  # what they are, for the message
    iid_only = ""  # why the task shards only iid (empty: any partition)
    # a classifier's last local_gradients: each local worker's accuracy on its batch (0-1), in worker
    # order; None where the task does not classify
    last_accuracies: list[float] | None = None

    @classmethod
    def check(cls, cfg) -> list[str]:
        """Config errors for the keys this task reads: a model it cannot train, else the model's
        keys (``check_model``), and the dataset's keys (``check_dataset``)."""
        wrong = model_choice_error(cfg, cls.models, cls.models_are) if cls.models else None
        errors = ([wrong] if wrong else cls.check_model(cfg)) + cls.check_dataset(cfg.dataset)
        d = cfg.dataset
        if cls.iid_only and d.partition != "iid":
            errors.append(
                f"`dataset.partition` must be 'iid' for dataset={d.name} ({cls.iid_only}), but is {d.partition!r}."
            )
        return errors + check_network_keys(cfg)

    @classmethod
    def check_model(cls, cfg) -> list[str]:
        return []

    @classmethod
    def check_dataset(cls, d) -> list[str]:
        return []

    def context(self, needs: Needs, algo_name: str) -> AlgorithmContext:
        """The algorithm's view of this task; a need the task cannot meet stops the run."""
        if needs.gradient_point and not self.supports_gradient_point:
            raise ParameterError(
                f"algo={algo_name} evaluates gradients away from the iterate, which only "
                "convex models support (model=logreg|least_squares|quadratic)."
            )
        if needs.worker_points and not self.supports_worker_points:
            raise ParameterError(
                f"algo={algo_name} takes each worker's gradient at its own point, which only "
                "the network task (image datasets) and convex models support."
            )
        return AlgorithmContext(self.params, list(self.layer_sizes), problem=self.constants, decay_mask=self.decay_mask)

    def state_dict(self) -> dict[str, Any]:
        """What the next step depends on beyond the parameters (data positions, buffers, hidden
        states); every random draw derives from (seed, step, worker), so no RNG is kept."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, but the checkpoint holds {sorted(state)}")

    def after_step(self) -> None:
        """After the algorithm's update: share what is not in the parameters (none by default)."""

    def row_metrics(self) -> dict[str, float]:
        return {}

    def converged(self) -> bool:
        return False

    def convergence_note(self) -> str:
        return ""


def model_choice_error(cfg, allowed: tuple[str, ...], what: str) -> str | None:
    """The message when a task that trains only ``allowed`` models gets another one."""
    if cfg.model.name in allowed:
        return None
    return (
        f"`model.name` must be one of {list(allowed)} for dataset={cfg.dataset.name} ({what}), "
        f"but is {cfg.model.name!r}."
    )


def dropout_error(value) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
        return None
    return f"`model.dropout` must be a number in [0, 1), but is {value!r}."


def check_network_keys(cfg: DictConfig) -> list[str]:
    """Keys that only convex models use, set on a network run."""
    errors: list[str] = []
    if cfg.precision != "float32":
        errors.append(
            f"`precision` must be 'float32' for model={cfg.model.name} (float64 is for convex models), "
            f"but is {cfg.precision!r}."
        )
    for key in ("classes", "feature_range"):
        if cfg.dataset.get(key) is not None:
            errors.append(
                f"`dataset.{key}` is only used by convex models (model=logreg|least_squares), "
                f"but is {cfg.dataset.get(key)!r} with model={cfg.model.name}."
            )
    return errors
