"""DEF (Xu & Huang, ICML 2022) networks: VGG-16-BN, pre-act ResNet-110 (bottleneck) and WRN-28-10 for
CIFAR in the authors' code's form (anxuthu/DEF models/), torchvision's ResNet-50 for ImageNet.

Parameter counts are pinned twice: as literals (the reference numbers) and as layer-by-layer sums of
the reference architectures, so a wrong count says which one moved. The literals were also checked
against the authors' own modules (vgg16bn, resnet110, WideResNet28x10 at anxuthu/DEF 892ed9c: the
same tensors in the same order, the same outputs, the same initial values under one seed)."""

from __future__ import annotations

import pytest
import torch

from compress_train.runner.config.check import check_config, component_params
from compress_train.runner.tasks import models

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def conv(c_in: int, c_out: int, k: int, bias: bool = False) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def vgg16_bn(classes: int, head: str) -> int:
    total, c_in = 0, 3
    for v in VGG16:
        if v != "M":
            total += conv(c_in, v, 3, bias=True) + bn(v)
            c_in = v
    return total + (linear(512, 512) * 2 + linear(512, classes) if head == "def" else linear(512, classes))


def preact_resnet110_bottleneck(classes: int) -> int:
    total, c_in = conv(3, 16, 3), 16
    for planes in (16, 32, 64):
        for i in range(12):
            total += bn(c_in) + conv(c_in, planes, 1) + bn(planes) + conv(planes, planes, 3)
            total += bn(planes) + conv(planes, 4 * planes, 1)
            if i == 0:  # the shape changes: 1x1 conv shortcut, no BN
                total += conv(c_in, 4 * planes, 1)
            c_in = 4 * planes
    return total + bn(256) + linear(256, classes)


def wide_resnet(classes: int, depth: int, k: int, bias: bool) -> int:
    n = (depth - 4) // 6
    total, c_in = conv(3, 16, 3, bias), 16
    for width in (16 * k, 32 * k, 64 * k):
        for i in range(n):
            total += bn(c_in) + conv(c_in, width, 3, bias) + bn(width) + conv(width, width, 3, bias)
            if c_in != width:  # the first block of a stage: 1x1 conv shortcut
                total += conv(c_in, width, 1, bias)
            c_in = width
    return total + bn(64 * k) + linear(64 * k, classes)


# (model, params, classes, reference count, parameter tensors, input side)
CASES = [
    ("vgg16_bn_cifar", {}, 10, 15_253_578, 13 * 4 + 3 * 2),
    ("vgg16_bn_cifar", {}, 100, 15_299_748, 13 * 4 + 3 * 2),
    ("vgg16_bn_cifar", {"classifier": "linear"}, 10, 14_728_266, 13 * 4 + 2),  # kuangliu/pytorch-cifar VGG16
    ("vgg16_bn_cifar", {"classifier": "linear"}, 100, 14_774_436, 13 * 4 + 2),
    ("preact_resnet110_cifar", {}, 10, 1_146_842, 1 + 36 * 9 + 3 + 2 + 2),
    ("preact_resnet110_cifar", {}, 100, 1_169_972, 1 + 36 * 9 + 3 + 2 + 2),
    ("wrn28_10_cifar", {}, 10, 36_489_290, 2 + 12 * 8 + 3 * 2 + 2 + 2),
    ("wrn28_10_cifar", {}, 100, 36_546_980, 2 + 12 * 8 + 3 * 2 + 2 + 2),
    ("wrn28_10_cifar", {"variant": "official"}, 10, 36_479_194, 1 + 12 * 6 + 3 + 2 + 2),  # the cited 36.5M
    ("wrn28_10_cifar", {"variant": "official"}, 100, 36_536_884, 1 + 12 * 6 + 3 + 2 + 2),
    ("resnet50", {}, 1000, 25_557_032, 161),  # torchvision's documented ResNet-50 size
    ("resnet50", {}, 10, 25_557_032 - 990 * 2049, 161),
]

FORMULAS = {
    "vgg16_bn_cifar": lambda p, c: vgg16_bn(c, p.get("classifier", "def")),
    "preact_resnet110_cifar": lambda p, c: preact_resnet110_bottleneck(c),
    "wrn28_10_cifar": lambda p, c: wide_resnet(
        c, p.get("depth", 28), p.get("widen", 10), p.get("variant", "def") == "def"
    ),
    "resnet50": lambda p, c: 25_557_032 - (1000 - c) * 2049,  # only the 2048 -> classes layer changes
}


@pytest.mark.parametrize(
    "name,params,classes,reference,tensors",
    CASES,
    ids=[f"{c[0]}-{'-'.join(map(str, c[1].values())) or 'default'}-{c[2]}cls" for c in CASES],
)
def test_parameter_counts_match_the_reference_architectures(name, params, classes, reference, tensors) -> None:
    model = models.build(name, params, classes)
    assert count(model) == reference == FORMULAS[name](params, classes)
    assert len(list(model.parameters())) == tensors


def test_wrn_depth_and_width_are_configurable() -> None:
    for depth, k in ((16, 4), (10, 1), (40, 2)):
        for variant in ("def", "official"):
            model = models.build("wrn28_10_cifar", {"depth": depth, "widen": k, "variant": variant}, 10)
            assert count(model) == wide_resnet(10, depth, k, variant == "def")
    assert count(models.build("wrn28_10_cifar", {"depth": 16, "widen": 8, "variant": "official"}, 10)) == 10_961_370


@pytest.mark.parametrize(
    "name,params,classes,side",
    [
        ("vgg16_bn_cifar", {}, 10, 32),
        ("vgg16_bn_cifar", {"classifier": "linear"}, 100, 32),
        ("preact_resnet110_cifar", {}, 100, 32),
        ("wrn28_10_cifar", {"depth": 10, "widen": 2}, 10, 32),
        ("wrn28_10_cifar", {"depth": 10, "widen": 2, "variant": "official", "dropout": 0.3}, 100, 32),
        ("resnet50", {}, 10, 64),
    ],
)
def test_forward_shape(name, params, classes, side, one_thread) -> None:
    torch.manual_seed(0)
    model = models.build(name, params, classes)
    with torch.no_grad():
        out = model(torch.randn(2, 3, side, side))
    assert out.shape == (2, classes) and torch.isfinite(out).all()


def test_wrn28_10_forward_and_backward(one_thread) -> None:
    torch.manual_seed(0)
    model = models.build("wrn28_10_cifar", {}, 10)
    model(torch.randn(2, 3, 32, 32)).logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_def_forms_keep_the_authors_details() -> None:
    torch.manual_seed(0)
    vgg = models.build("vgg16_bn_cifar", {}, 10)
    convs = [m for m in vgg.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and all(m.bias is not None and not m.bias.any() for m in convs)
    last = convs[-1].weight  # N(0, 2 / (9 * out_channels)): 2.4M draws
    assert abs(float(last.detach().std()) / (2 / (9 * 512)) ** 0.5 - 1) < 0.01
    assert [m.p for m in vgg.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]

    resnet = models.build("preact_resnet110_cifar", {}, 10)
    shortcuts = [
        b.downsample
        for stage in (resnet.layer1, resnet.layer2, resnet.layer3)
        for b in stage
        if b.downsample is not None
    ]
    assert [(s.in_channels, s.out_channels, s.stride) for s in shortcuts] == [
        (16, 64, (1, 1)),
        (64, 128, (2, 2)),
        (128, 256, (2, 2)),
    ]
    wrn = models.build("wrn28_10_cifar", {}, 10)
    assert wrn.bn1.momentum == 0.9 and wrn.layer2[0].conv2.stride == (2, 2) and wrn.layer2[0].conv1.stride == (1, 1)
    official = models.build("wrn28_10_cifar", {"variant": "official"}, 10)
    assert official.bn1.momentum == 0.1 and official.layer2[0].conv1.stride == (2, 2)
    assert all(m.bias is None for m in official.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("wrn28_10_cifar", {"depth": 27}, "`model.depth` must be 6n + 4"),
        ("wrn28_10_cifar", {"widen": 0}, "`model.widen` must be an integer >= 1"),
        ("wrn28_10_cifar", {"dropout": 1.0}, "`model.dropout` must be a number in [0, 1)"),
        ("wrn28_10_cifar", {"variant": "xternalz"}, "`model.variant` must be one of ['def', 'official']"),
        ("vgg16_bn_cifar", {"classifier": "mlp"}, "`model.classifier` must be one of ['def', 'linear']"),
    ],
)
def test_bad_parameters_name_the_key(name, params, message) -> None:
    with pytest.raises(ValueError) as err:
        models.build(name, params, 10)
    assert message in str(err.value)


def test_configs_compose_and_pass_their_parameters(make_config) -> None:
    for name in ("vgg16_bn_cifar", "preact_resnet110_cifar", "wrn28_10_cifar"):
        for ds in ("cifar10", "cifar100"):
            cfg = make_config(f"dataset={ds}", f"model={name}")
            check_config(cfg)
            assert cfg.model.name == name
    cfg = make_config("dataset=cifar10", "model=wrn28_10_cifar", "model.depth=16", "model.widen=8")
    assert component_params(cfg.model) == {"depth": 16, "widen": 8, "dropout": 0.0, "variant": "def"}
    assert component_params(make_config("model=vgg16_bn_cifar").model) == {"classifier": "def", "dropout": 0.5}
    assert component_params(make_config("model=preact_resnet110_cifar").model) == {}
    assert component_params(make_config("model=resnet50").model) == {}
    assert {"vgg16_bn_cifar", "preact_resnet110_cifar", "wrn28_10_cifar", "resnet50"} <= set(models.available())


def test_schema_types_the_new_keys(make_config) -> None:
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ValidationError

    with pytest.raises((ValidationError, ConfigCompositionException)):
        make_config("model=wrn28_10_cifar", "model.depth=deep")
    with pytest.raises(ConfigCompositionException):
        make_config("model=preact_resnet110_cifar", "model.depth=56")  # no such key: the depth is 110
