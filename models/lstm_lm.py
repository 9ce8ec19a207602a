"""The word-level LSTM language model of hard_threshold §5 (the authors' settings:
3 layers, 650 hidden units, tied embeddings, dropout 0.4; trained with BPTT 30).

The form of PyTorch's ``word_language_model`` example (the paper's LM task file is not in our
copy of its code): ``Embedding(V, hidden) -> Dropout -> LSTM(hidden, hidden, layers, dropout
between layers; none for one layer) -> Dropout -> Linear(hidden, V)``. With ``tied`` the decoder's weight IS the embedding matrix (one
parameter, counted and sent once), which needs embedding size = hidden; here it always is.
Initialisation as in the example: embedding and decoder weights U(-0.1, 0.1), decoder bias 0,
LSTM weights PyTorch's default. ``num_classes`` is the vocabulary size V.

Input: int64 token ids L x B (time first) and the hidden state ``(h, c)``, each layers x B x
hidden; output: logits L x B x V and the new hidden state. ``init_hidden(B)`` gives zeros.
Parameters: V*hidden (embedding = tied decoder weight) + V (decoder bias) + per layer
4*hidden*(2*hidden) + 8*hidden; untied adds V*hidden. Defaults: 16,665,600 on PTB (V = 10,000),
31,819,578 on WikiText-2 (V = 33,278).
"""

from __future__ import annotations

import torch
from torch import nn

Hidden = tuple[torch.Tensor, torch.Tensor]


class LSTMLanguageModel(nn.Module):
    def __init__(self, num_classes: int, hidden: int = 650, layers: int = 3, dropout: float = 0.4, tied: bool = True):
        super().__init__()
        self.vocab, self.hidden, self.layers = num_classes, hidden, layers
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(num_classes, hidden)
        self.rnn = nn.LSTM(hidden, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden, num_classes)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tied:
            self.decoder.weight = self.encoder.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, tokens: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        out, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(out)), hidden

    def init_hidden(self, batch: int) -> Hidden:
        w = self.encoder.weight
        zeros = w.new_zeros(self.layers, batch, self.hidden)
        return zeros, zeros.clone()


IMPLEMENTATION = LSTMLanguageModel
