"""SAEF, step-ahead error feedback (Xu, Huo & Huang, AAAI 2021; baselines.md C4) as ``def``'s
tables run it: gradients at the step-ahead point x - e_i (DEF with lambda = 1), then EF with local
momentum; evaluated at the synchronised x. ``average_every``: the original's error averaging,
e_i <- avg_j e_j every that many steps (one allreduce of 32 d bits, counted in bits up and
down); null (``def``'s scripts) turns it off."""

from compress_train.algorithms.base import tensor_bits
from compress_train.algorithms.detached import DetachedErrorFeedback


class SAEF(DetachedErrorFeedback):
    name = "saef"
    evaluate_at = "iterate"
    fixed_lam = 1.0

    def __init__(self, *args, average_every: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.average_every = average_every

    @classmethod
    def check(cls, cfg):
        errors = super().check(cfg)
        every = cfg.get("average_every")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            errors.append(f"`average_every` must be null (off) or an integer >= 1, but is {every!r}.")
        return errors

    def step(self, grads, step):
        report = super().step(grads, step)
        if self.average_every and (step + 1) % self.average_every == 0:
            errors = [self.memories[w].error for w in self.comm.local_workers]
            avg = self.comm.allreduce_mean(errors)
            for e in errors:
                e.copy_(avg)
            report.bits_up += tensor_bits(avg)
            report.bits_down += tensor_bits(avg)
        return report


IMPLEMENTATION = SAEF
