"""NeuMF, the Neural Collaborative Filtering model of He et al., "Neural Collaborative Filtering",
WWW 2017 (§3.4, Fig. 3: GMF + MLP fused), in the form hard_threshold §5 trains on MovieLens-20M
(the authors' settings; their code, sands-lab/rethinking-sparsification ncf/, is
NVIDIA DeepLearningExamples' PyTorch NCF): factors 64, MLP [256, 256, 128, 64], dropout 0.5.

* GMF branch: user and item embeddings of ``factors`` each, multiplied elementwise.
* MLP branch: user and item embeddings of ``layers[0] // 2`` each, concatenated (width
  ``layers[0]``), then ``Linear(layers[j-1], layers[j])`` -> ReLU -> dropout for j = 1..len-1.
  Dropout (probability ``dropout``) follows EVERY hidden layer's ReLU, the last one included, as in
  the authors' code; the embeddings, the GMF product and the head get none. ``layers`` of length 1
  means no hidden layer (the concatenated embeddings go straight to the head).
* NeuMF head: ``Linear(factors + layers[-1], num_classes)`` on concat(GMF output, MLP output);
  ``num_classes`` = 1: one logit per (user, item) pair, trained with binary cross-entropy.
* Initialisation as in the authors' code: embeddings N(0, 0.01^2), hidden weights Glorot uniform,
  head weight LeCun uniform (sqrt(3 / fan_in)), biases PyTorch's default.

Parameters: (U + I) * (factors + layers[0] // 2) + sum_j (layers[j-1] + 1) * layers[j]
+ (factors + layers[-1] + 1) * num_classes. ``forward(users, items)`` takes two int64 tensors of
the same shape (B,) and returns logits (B, num_classes).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence, cast

import torch
from torch import Tensor, nn


class NCF(nn.Module):
    def __init__(
        self,
        num_classes: int,
        num_users: int,
        num_items: int,
        factors: int = 64,
        layers: Sequence[int] = (256, 256, 128, 64),
        dropout: float = 0.5,
    ):
        super().__init__()
        layers = list(layers)
        if not layers or layers[0] % 2 or min(layers) < 1:
            raise ValueError(
                f"`model.layers` must be a non-empty list of positive integers whose first (the "
                f"concatenated MLP embedding width) is even, but is {layers!r}."
            )
        self.dropout = float(dropout)
        self.gmf_user = nn.Embedding(num_users, factors)
        self.gmf_item = nn.Embedding(num_items, factors)
        self.mlp_user = nn.Embedding(num_users, layers[0] // 2)
        self.mlp_item = nn.Embedding(num_items, layers[0] // 2)
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
        self.head = nn.Linear(factors + layers[-1], num_classes)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, 0.0, 0.01)
        for layer in cast("Iterable[nn.Linear]", self.mlp):  # ModuleList is not generic
            limit = math.sqrt(6.0 / (layer.in_features + layer.out_features))  # Glorot uniform
            nn.init.uniform_(layer.weight, -limit, limit)
        limit = math.sqrt(3.0 / self.head.in_features)  # LeCun uniform
        nn.init.uniform_(self.head.weight, -limit, limit)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        gmf = self.gmf_user(users) * self.gmf_item(items)
        x = torch.cat((self.mlp_user(users), self.mlp_item(items)), dim=-1)
        for layer in self.mlp:
            x = nn.functional.dropout(torch.relu(layer(x)), p=self.dropout, training=self.training)
        return self.head(torch.cat((gmf, x), dim=-1))


IMPLEMENTATION = NCF
