"""All of a model's parameters (and their gradients) as views into one flat vector.

Algorithms see a single tensor; ``layer_sizes`` tells the layer-wise compressors where each
parameter tensor starts. Writing into ``params`` updates the model in place.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FlatModel:
    def __init__(self, model: nn.Module):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.layer_names = [n for n, _ in named]
        self.layer_sizes = [p.numel() for _, p in named]
        self.params = torch.cat([p.detach().reshape(-1) for _, p in named])
        self.grad = torch.zeros_like(self.params)
        offset = 0
        for (_, p), size in zip(named, self.layer_sizes):
            p.data = self.params[offset : offset + size].view_as(p)
            p.grad = self.grad[offset : offset + size].view_as(p)
            offset += size
        self.model = model
        self._named = named

    def gradient(self) -> Tensor:
        """The flat gradient after ``backward``. Autograd accumulates into the existing views;
        should a parameter's ``.grad`` have been replaced, it is copied back in and re-viewed."""
        offset = 0
        for (_, p), size in zip(self._named, self.layer_sizes):
            view = self.grad[offset : offset + size]
            if p.grad is None:
                view.zero_()
            elif p.grad.data_ptr() != view.data_ptr():
                view.copy_(p.grad.reshape(-1))
            p.grad = view.view_as(p)
            offset += size
        return self.grad

    def norm_mask(self) -> Tensor:
        """1 for every coordinate of a weight-decayed parameter, 0 for normalisation layers'
        (BatchNorm, GroupNorm, LayerNorm): hard_threshold's CIFAR code applies no weight decay to BN."""
        norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
        in_norm = {id(p) for m in self.model.modules() if isinstance(m, norm_types) for p in m.parameters()}
        return torch.cat(
            [
                torch.full((size,), 0.0 if id(p) in in_norm else 1.0, dtype=self.params.dtype)
                for (_, p), size in zip(self._named, self.layer_sizes)
            ]
        )

    @property
    def numel(self) -> int:
        return self.params.numel()

    def zero_grad(self) -> None:
        self.grad.zero_()
