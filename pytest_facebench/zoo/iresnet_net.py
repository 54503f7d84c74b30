"""The improved ResNets of insightface's ArcFace (`recognition/arcface_torch/backbones/iresnet.py`), with the
same module names, so that the `state_dict` of an arcface_torch `backbone.pth` loads as it is.

Written from the reference's structure: a 3×3 stem (conv1, bn1, prelu), four stages of pre-activation
basic blocks (bn1 → conv1 → bn2 → prelu → conv2(stride) → bn3, plus a 1×1 conv + BN `downsample` at each
stage's first block), then bn2 → flatten → dropout → fc → BatchNorm1d `features`: the 512-D embedding of a
112×112 face. The fp16 autocast of training is left out (benchmarks choose precision themselves).
"""

from __future__ import annotations

import torch
from torch import nn

STAGES = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
WIDTHS = (64, 128, 256, 512)
FC_SPATIAL = 7 * 7  # the last stage's map for a 112×112 input


class IBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """`blocks`: blocks per stage; `num_features`: embedding size; `dropout`: before `fc` (training only)."""

    def __init__(self, blocks: tuple[int, int, int, int], num_features: int = 512, dropout: float = 0.0):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes, eps=1e-05)
        self.prelu = nn.PReLU(self.inplanes)
        self.layer1 = self._make_layer(WIDTHS[0], blocks[0])
        self.layer2 = self._make_layer(WIDTHS[1], blocks[1])
        self.layer3 = self._make_layer(WIDTHS[2], blocks[2])
        self.layer4 = self._make_layer(WIDTHS[3], blocks[3])
        self.bn2 = nn.BatchNorm2d(WIDTHS[3] * IBasicBlock.expansion, eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(WIDTHS[3] * IBasicBlock.expansion * FC_SPATIAL, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for module in self.modules():  # the reference's initialization, so 'untrained' means the same
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0, 0.1)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        """One stage: the first block halves the resolution (stride 2) and projects the shortcut."""
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes * IBasicBlock.expansion, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(planes * IBasicBlock.expansion, eps=1e-05),
        )
        layers = [IBasicBlock(self.inplanes, planes, stride=2, downsample=downsample)]
        self.inplanes = planes * IBasicBlock.expansion
        layers += [IBasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


def iresnet(arch: str, num_features: int = 512) -> IResNet:
    """An untrained network of one of `STAGES`'s architectures."""
    return IResNet(STAGES[arch], num_features=num_features)


def blocks_per_stage(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """How many blocks each stage of a checkpoint has, read from its keys ('layer3.13.conv1.weight' ...)."""
    counts = [0, 0, 0, 0]
    for key in state:
        parts = key.split(".")
        if len(parts) > 2 and parts[0] in ("layer1", "layer2", "layer3", "layer4") and parts[1].isdigit():
            stage = int(parts[0][-1]) - 1
            counts[stage] = max(counts[stage], int(parts[1]) + 1)
    return tuple(counts)
