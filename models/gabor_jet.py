"""A Gabor-jet model of face similarity (Lades et al. 1993; Biederman and Kalocsai 1997), written as user code.

A V1-like bank of complex Gabor filters, 5 scales × 8 orientations, is applied to the grey-level image at the
points of a regular grid over the face; the magnitudes of the responses (the "jets") are the embedding.
Layers: `scale0` (finest) to `scale4`, each (8 orientations × grid × grid), and `all` (= `output`): every scale.

The filters follow Wiskott et al. (1997): wave vector k_v = (π/2) · 2^(−v/2), orientations μπ/8, envelope width
σ = 2π (so about one octave per scale), with the DC term removed:

    ψ(x) = (k²/σ²) · exp(−k²|x|²/(2σ²)) · (exp(i k·x) − exp(−σ²/2))

Use it in a grid as `factory = "models/gabor_jet.py:GaborJet"`; `size` (the image side, default 128) and
`grid` (points per side, default 8) are its parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pytest_facebench import BaseModel, Preprocessing

SCALES = 5
ORIENTATIONS = 8
SIGMA = 2 * math.pi
LUMA = (0.299, 0.587, 0.114)


def wave_number(scale: int) -> float:
    return math.pi / 2 * 2 ** (-scale / 2)


def gabor_kernels(scale: int, orientations: int = ORIENTATIONS) -> torch.Tensor:
    """(2·orientations, 1, K, K): the real parts, then the imaginary parts, of one scale's filters."""
    k = wave_number(scale)
    half = math.ceil(2.5 * SIGMA / k)  # the envelope's standard deviation is σ/k pixels
    coords = torch.arange(-half, half + 1, dtype=torch.float64)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    envelope = (k**2 / SIGMA**2) * torch.exp(-(k**2) * (x**2 + y**2) / (2 * SIGMA**2))
    real, imag = [], []
    for mu in range(orientations):
        theta = mu * math.pi / orientations
        phase = k * (x * math.cos(theta) + y * math.sin(theta))
        real.append(envelope * (torch.cos(phase) - math.exp(-(SIGMA**2) / 2)))
        imag.append(envelope * torch.sin(phase))
    return torch.stack(real + imag).unsqueeze(1).float()


def grid_points(size: int, grid: int) -> list[int]:
    """The pixel coordinates of the grid along one side: the centres of `grid` equal cells."""
    step = size / grid
    return [int(step / 2 + j * step) for j in range(grid)]


class GaborScale(nn.Module):
    """One scale's 8 orientations: magnitudes at the grid points, (B, 8, grid, grid)."""

    def __init__(self, scale: int, size: int, grid: int):
        super().__init__()
        self.register_buffer("kernels", gabor_kernels(scale))
        self.half = self.kernels.shape[-1] // 2
        self.points = grid_points(size, grid)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        mode = "reflect" if self.half < min(gray.shape[-2:]) else "constant"  # reflect needs a wider image
        padded = nn.functional.pad(gray, (self.half,) * 4, mode=mode)
        index = torch.tensor(self.points, device=gray.device)
        # the filter windows centred on the grid points: (B, 1, grid, grid, K, K)
        rows = padded.unfold(2, 2 * self.half + 1, 1).index_select(2, index)
        windows = rows.unfold(3, 2 * self.half + 1, 1).index_select(3, index)
        responses = torch.einsum("bcghyx,ocyx->bogh", windows, self.kernels.to(gray.dtype))
        real, imag = responses.chunk(2, dim=1)
        return torch.sqrt(real**2 + imag**2)


class GaborBank(nn.Module):
    def __init__(self, size: int, grid: int):
        super().__init__()
        for scale in range(SCALES):
            self.add_module(f"scale{scale}", GaborScale(scale, size, grid))
        self.all = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        gray = (images * weights).sum(dim=1, keepdim=True)
        jets = [getattr(self, f"scale{s}")(gray).flatten(1) for s in range(SCALES)]
        return self.all(torch.cat(jets, dim=1))


class GaborJet(BaseModel):
    """Gabor jets (5 scales × 8 orientations, magnitudes) on a `grid` × `grid` lattice of a `size`-pixel image."""

    default_layers = ("all",)

    def __init__(self, *args, size: int = 128, grid: int = 8, **kwargs):
        super().__init__(*args, **kwargs)
        if size < 16 or not 1 <= grid <= size:
            raise ValueError(f"size must be at least 16 and grid from 1 to size; got size={size}, grid={grid}")
        self.size, self.grid = size, grid
        if kwargs.get("preprocessing") is None:
            self.preprocessing = Preprocessing(input_size=size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def _build_model(self) -> nn.Module:
        return GaborBank(self.size, self.grid)
