"""The IMDB LSTM of comp_ams §5.3: "a LSTM network with 64 cells, equipped with an embedding
layer which embeds top 1000 words in the movie reviews into 32-dimensional vectors".

The supplement is not in our copy; our choices: ``nn.Embedding(num_words, 32, padding_idx=0)``
(id 0 is padding, kept at zero), one ``nn.LSTM(32, 64, batch_first=True)`` layer, and a linear
classifier on the LAST time step's hidden state (the data are pre-padded, so that state follows
the real text) to ``num_classes`` logits (2). Defaults give 57,218 parameters. Input: int64
token ids N x L, all < ``num_words``; output: logits N x num_classes.
"""

from __future__ import annotations

import torch
from torch import nn


class ImdbLSTM(nn.Module):
    def __init__(self, num_classes: int = 2, num_words: int = 1000, embed_dim: int = 32, hidden: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(num_words, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embedding(x))
        return self.classifier(h[-1])


IMPLEMENTATION = ImdbLSTM
