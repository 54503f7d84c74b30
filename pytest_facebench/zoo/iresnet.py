"""ArcFace face-recognition backbones: insightface's iresnet18/34/50/100/200 (arcface_torch), loaded from the
`backbone.pth` files that arcface_torch writes and the insightface model zoo distributes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.preprocessing import Preprocessing
from ..errors import ModelError
from .base import ZooModel, seeded

if TYPE_CHECKING:
    from torch import nn

ARCHS = ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet200")

# arcface_torch/inference.py: cv2.imread → cv2.resize(img, (112, 112)) (bilinear) → BGR2RGB →
# x.div_(255).sub_(0.5).div_(0.5); its eval/verification.py feeds the RGB-decoded 112×112 aligned faces
# of the .bin packs the same way. Aligned 112×112 inputs are not resampled (a resize to the same size is
# the identity); larger inputs are downscaled with antialiasing, where cv2.resize's INTER_LINEAR is not.
ARCFACE_PREPROCESSING = Preprocessing(
    input_size=112, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear", crop="none"
)


class ArcFace(ZooModel):
    """`arch`: one of iresnet18/34/50/100/200. `weights`: the path to an arcface_torch `backbone.pth` (a
    state_dict), or 'untrained' (the reference's random initialization, seeded by `seed`).
    `num_features`: the embedding size (512 for every released backbone).

    Every module is a readable layer ('layer1'...'layer4', 'bn2', 'fc', 'features'); `output` is the
    embedding (the `features` BatchNorm1d), not L2-normalized."""

    default_align: ClassVar[str] = "arcface_112"
    named_weights: ClassVar[tuple[str, ...]] = ("untrained",)

    def __init__(
        self,
        *args: Any,
        arch: str = "iresnet50",
        weights: str | None = None,
        seed: int = 0,
        num_features: int = 512,
        **kwargs: Any,
    ):
        super().__init__(*args, weights=weights, **kwargs)
        if arch not in ARCHS:
            raise ModelError(f"model '{self.name}': arch must be one of {', '.join(ARCHS)}; got {arch!r}")
        if not weights:
            raise ModelError(
                f"model '{self.name}': {arch} needs weights = \"<path to backbone.pth>\" (an "
                f'arcface_torch state_dict) or weights = "untrained"'
            )
        self.arch = arch
        self.seed = seed
        self.num_features = num_features

    def reference_preprocessing(self) -> Preprocessing:
        return ARCFACE_PREPROCESSING

    def _build_model(self) -> nn.Module:
        from .iresnet_net import iresnet

        with seeded(self.seed):
            return iresnet(self.arch, self.num_features)

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        from .iresnet_net import STAGES, blocks_per_stage

        state = self.read_weights(path)
        found = blocks_per_stage(state)
        looks_like_iresnet = "prelu.weight" in state and "features.running_var" in state
        if looks_like_iresnet and found != STAGES[self.arch]:
            named = next((arch for arch, stages in STAGES.items() if stages == found), None)
            hint = f'set arch = "{named}"' if named else f"no iresnet has {list(found)} blocks per stage"
            raise ModelError(
                f"model '{self.name}': {path} holds a backbone with {list(found)} blocks per stage, "
                f'but arch = "{self.arch}" has {list(STAGES[self.arch])}; {hint}'
            )
        self.load_strict(net, state, path, expected=f"insightface's {self.arch}")
