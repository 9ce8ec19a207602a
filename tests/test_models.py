"""comp_ams §5.3 models: forward shapes, parameter counts, seeded construction, config wiring."""

from __future__ import annotations

import pytest
import torch

from compress_train.runner.config.check import check_config, component_params
from compress_train.runner.tasks import models


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _lstm(n_in: int, hidden: int) -> int:
    return 4 * hidden * (n_in + hidden) + 2 * 4 * hidden  # W_ih, W_hh, b_ih, b_hh


CASES = [  # (model, params, num_classes, input, expected parameter count)
    (
        "cifar_cnn",
        {},
        10,
        lambda: torch.randn(4, 3, 32, 32),
        _conv(3, 32) + _conv(32, 64) + _conv(64, 128) + _linear(2048, 256) + _linear(256, 10),
    ),
    (
        "cifar_cnn",
        {"hidden": 128},
        100,
        lambda: torch.randn(4, 3, 32, 32),
        _conv(3, 32) + _conv(32, 64) + _conv(64, 128) + _linear(2048, 128) + _linear(128, 100),
    ),
    ("imdb_lstm", {}, 2, lambda: torch.randint(0, 1000, (4, 50)), 1000 * 32 + _lstm(32, 64) + _linear(64, 2)),
    (
        "imdb_lstm",
        {"num_words": 500},
        2,
        lambda: torch.randint(0, 500, (4, 7)),
        500 * 32 + _lstm(32, 64) + _linear(64, 2),
    ),
]


@pytest.mark.parametrize(
    "name,params,classes,make_input,count", CASES, ids=[f"{c[0]}-{c[2]}cls-{c[4]}params" for c in CASES]
)
def test_forward_shape_and_parameter_count(name, params, classes, make_input, count) -> None:
    model = models.build(name, params, classes)
    assert sum(p.numel() for p in model.parameters()) == count
    assert model(make_input()).shape == (4, classes)


def test_documented_default_counts() -> None:
    assert sum(p.numel() for p in models.build("cifar_cnn", {}, 10).parameters()) == 620_362
    assert sum(p.numel() for p in models.build("imdb_lstm", {}, 2).parameters()) == 57_218


@pytest.mark.parametrize("name,classes", [("cifar_cnn", 10), ("imdb_lstm", 2)])
def test_seeded_construction_is_deterministic(name: str, classes: int) -> None:
    def params(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [p.detach().clone() for p in models.build(name, {}, classes).parameters()]

    a, b, c = params(3), params(3), params(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_lstm_padding_row_is_zero_and_prepadding_uses_the_last_state() -> None:
    torch.manual_seed(0)
    model = models.build("imdb_lstm", {}, 2).eval()
    assert torch.count_nonzero(model.embedding.weight[0]) == 0
    x = torch.randint(3, 1000, (1, 6))
    with torch.no_grad():
        changed_last = x.clone()
        changed_last[0, -1] = 2
        assert not torch.allclose(model(x), model(changed_last))


def test_configs_compose_and_wire_vocabulary(make_config) -> None:
    cfg = make_config("dataset=imdb", "model=imdb_lstm", "dataset.num_words=500")
    check_config(cfg)
    assert component_params(cfg.model)["num_words"] == 500
    cfg = make_config("dataset=mnist", "model=imdb_lstm")
    assert component_params(cfg.model)["num_words"] == 1000
    for ds in ("cifar10", "cifar100"):
        check_config(make_config(f"dataset={ds}", "model=cifar_cnn"))


# hard_threshold §5 CIFAR networks (kuangliu/pytorch-cifar forms): Table 1's d for 10 classes, and the
# fan-in of the final linear layer (100 classes change only that layer: +90 * (fan_in + 1)).
SEED002 = {
    "resnet18_cifar": (11_173_962, 512),
    "googlenet_cifar": (6_166_250, 1024),
    "senet18_cifar": (11_260_354, 512),
}


@pytest.mark.parametrize("classes", [10, 100])
@pytest.mark.parametrize("name", sorted(SEED002))
def test_seed002_cifar_networks_count_forward_and_backward(name: str, classes: int, one_thread) -> None:
    d10, fan_in = SEED002[name]
    torch.manual_seed(0)
    model = models.build(name, {}, classes)
    count = sum(p.numel() for p in model.parameters())
    assert count == d10 + (classes - 10) * (fan_in + 1)
    last = model.linear
    assert (last.in_features, last.out_features) == (fan_in, classes)
    assert count - sum(p.numel() for p in last.parameters()) == d10 - (fan_in + 1) * 10

    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, classes)
    logits.logsumexp(dim=1).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname


def test_seed002_configs_compose(make_config) -> None:
    for name in SEED002:
        for ds in ("cifar10", "cifar100"):
            check_config(make_config(f"dataset={ds}", f"model={name}"))


def test_the_mnist_cnn_batch_norm_variant_normalises_after_each_convolution():
    """``model.batch_norm=true`` (def at scale=long): BatchNorm2d after both convolutions, before the
    ReLU; the default network is unchanged (1,199,882 parameters, no BatchNorm)."""
    from torch import nn

    from compress_train.models.mnist_cnn import MnistCNN

    plain, bn = MnistCNN(), MnistCNN(hidden=32, batch_norm=True)
    assert sum(p.numel() for p in plain.parameters()) == 1_199_882
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    kinds = [type(m).__name__ for m in bn.features]
    assert kinds[:6] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    assert sum(p.numel() for p in bn.parameters()) == 314_090 + 2 * (32 + 64)
    out = bn(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
