"""Stimulus manipulations of face research, applied to an aligned face chip (or a whole image).

Each manipulation is named by a short string, as a grid declares it (`derive = { inverted = "rotate180" }`):

- `rotate180`: the image turned by 180° (inversion);
- `negate`: contrast negation, 255 − value per channel;
- `grayscale`: ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B, as OpenCV and PIL), in all three channels;
- `lowpass:<cpf>` / `highpass:<cpf>`: a Gaussian filter in the Fourier domain whose gain is 1/2 at `<cpf>`
  cycles per face (the image's width is the face: an aligned chip); the high-pass keeps each channel's mean;
- `thatcherize`: the eyes (with their brows) and the mouth each turned by 180° in place, blended into the face
  through a smooth elliptical edge, from the 68-point landmarks (iBUG 300-W, dlib's shape predictor);
- `scramble` / `scramble:<seed>`: the eyes, nose and mouth moved to one another's places (a seeded
  permutation that moves every part), equal-size boxes centred on each part, smooth edges; from landmarks;
- `module:function`: a user's own, called with a PIL RGB image, returning an image of the same size (a PIL
  image or an H×W×3 uint8 array).

Every manipulation keeps the image's size; one that does not is an error naming it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from PIL import Image

# 68-point regions (iBUG 300-W): brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
LEFT_EYE_68 = [*range(17, 22), *range(36, 42)]  # the eye on the image's left, with its brow
RIGHT_EYE_68 = [*range(22, 27), *range(42, 48)]
NOSE_68 = list(range(27, 36))
MOUTH_68 = list(range(48, 68))
EYE_CONTOURS_68 = (list(range(36, 42)), list(range(42, 48)))
THATCHER_MARGIN = 0.25  # each region's box grows by this fraction of its size on every side
FEATHER = 0.3  # the blending edge: the outer 30 % of each region's ellipse radius
SCRAMBLE_BOX = (0.8, 0.55)  # a scrambled part's box: width and height as fractions of the inter-ocular distance


def _luma(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114


def rotate180(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels[::-1, ::-1])


def negate(pixels: np.ndarray) -> np.ndarray:
    return 255 - pixels


def grayscale(pixels: np.ndarray) -> np.ndarray:
    luma = _to_uint8(_luma(pixels.astype(np.float64)))
    return np.repeat(luma[..., None], 3, axis=2)


def gaussian_gain(shape: tuple[int, int], cycles_per_face: float) -> np.ndarray:
    """The low-pass transfer function on `np.fft.fft2`'s grid: 2^-(f/cpf)², f in cycles per image width."""
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None] * width  # cycles per pixel × pixels per face width
    fx = np.fft.fftfreq(width)[None, :] * width
    return np.power(2.0, -((fx**2 + fy**2) / cycles_per_face**2))


def _filtered(pixels: np.ndarray, cycles_per_face: float, high: bool) -> np.ndarray:
    gain = gaussian_gain(pixels.shape[:2], cycles_per_face)
    if high:
        gain = 1.0 - gain
    data = pixels.astype(np.float64)
    out = np.empty_like(data)
    for channel in range(data.shape[2]):
        spectrum = np.fft.fft2(data[..., channel]) * gain
        out[..., channel] = np.fft.ifft2(spectrum).real
        if high:
            out[..., channel] += data[..., channel].mean()
    return _to_uint8(out)


def lowpass(pixels: np.ndarray, cycles_per_face: float) -> np.ndarray:
    return _filtered(pixels, cycles_per_face, high=False)


def highpass(pixels: np.ndarray, cycles_per_face: float) -> np.ndarray:
    return _filtered(pixels, cycles_per_face, high=True)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def region_box(points: np.ndarray, margin: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends, of the points' bounding box grown by `margin` of its size per side,
    clipped to the image."""
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    grow_x, grow_y = (x1 - x0) * margin + 1, (y1 - y0) * margin + 1
    return (
        max(0, int(np.floor(x0 - grow_x))),
        max(0, int(np.floor(y0 - grow_y))),
        min(shape[1], int(np.ceil(x1 + grow_x)) + 1),
        min(shape[0], int(np.ceil(y1 + grow_y)) + 1),
    )


def soft_ellipse(height: int, width: int, feather: float = FEATHER) -> np.ndarray:
    """A (height, width) mask: 1 in the ellipse's core, falling smoothly (smoothstep) to 0 at its edge."""
    y = (np.arange(height) + 0.5) / height * 2 - 1
    x = (np.arange(width) + 0.5) / width * 2 - 1
    radius = np.sqrt(x[None, :] ** 2 + y[:, None] ** 2)
    t = np.clip((1.0 - radius) / feather, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _blend(out: np.ndarray, box: tuple[int, int, int, int], patch: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    mask = soft_ellipse(y1 - y0, x1 - x0)[..., None]
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - mask) + patch * mask


def thatcher_boxes(landmarks: np.ndarray, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The boxes of the left eye, right eye (each with its brow) and mouth that `thatcherize` turns."""
    return [region_box(landmarks[part], THATCHER_MARGIN, shape) for part in (LEFT_EYE_68, RIGHT_EYE_68, MOUTH_68)]


def thatcherize(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    out = pixels.astype(np.float64)
    for x0, y0, x1, y1 in thatcher_boxes(landmarks, pixels.shape[:2]):
        _blend(out, (x0, y0, x1, y1), pixels[y0:y1, x0:x1][::-1, ::-1].astype(np.float64))
    return _to_uint8(out)


def scramble_boxes(landmarks: np.ndarray, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Equal-size boxes centred on the left eye, right eye, nose and mouth (`SCRAMBLE_BOX` × inter-ocular
    distance), shifted inside the image."""
    eyes = [landmarks[contour].mean(axis=0) for contour in EYE_CONTOURS_68]
    iod = float(np.hypot(*(eyes[1] - eyes[0])))
    width = max(2, round(SCRAMBLE_BOX[0] * iod))
    height = max(2, round(SCRAMBLE_BOX[1] * iod))
    if width > shape[1] or height > shape[0]:
        raise ValueError(f"the parts ({width}×{height} pixels) do not fit in the {shape[1]}×{shape[0]} image")
    centres = [*eyes, landmarks[NOSE_68].mean(axis=0), landmarks[MOUTH_68].mean(axis=0)]
    boxes = []
    for cx, cy in centres:
        x0 = min(max(0, round(cx - width / 2)), shape[1] - width)
        y0 = min(max(0, round(cy - height / 2)), shape[0] - height)
        boxes.append((x0, y0, x0 + width, y0 + height))
    return boxes


def scramble_order(seed: int, parts: int = 4) -> list[int]:
    """A seeded permutation that moves every part: part i goes to the place of part order[i]."""
    rng = np.random.default_rng(seed)
    while True:
        order = [int(i) for i in rng.permutation(parts)]
        if all(i != j for i, j in enumerate(order)):
            return order


def scramble(pixels: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    boxes = scramble_boxes(landmarks, pixels.shape[:2])
    out = pixels.astype(np.float64)
    for source, target in enumerate(scramble_order(seed, len(boxes))):
        x0, y0, x1, y1 = boxes[source]
        _blend(out, boxes[target], pixels[y0:y1, x0:x1].astype(np.float64))
    return _to_uint8(out)


@dataclass(frozen=True)
class Builtin:
    fn: Callable[..., np.ndarray]
    parameter: str = ""  # '' (none), 'cycles' (a positive number, required) or 'seed' (an integer, optional)
    needs_landmarks: bool = False


BUILTINS: dict[str, Builtin] = {
    "rotate180": Builtin(rotate180),
    "negate": Builtin(negate),
    "grayscale": Builtin(grayscale),
    "lowpass": Builtin(lowpass, "cycles"),
    "highpass": Builtin(highpass, "cycles"),
    "thatcherize": Builtin(thatcherize, needs_landmarks=True),
    "scramble": Builtin(scramble, "seed", needs_landmarks=True),
}
EXAMPLES = "rotate180, negate, grayscale, lowpass:<cycles per face>, highpass:<cycles per face>, thatcherize, " + (
    "scramble[:<seed>] or 'module:function'"
)


@dataclass(frozen=True)
class Manipulation:
    """One parsed manipulation: `spec` as written, the built-in's name (or '' for a user function) and its
    argument. Picklable: a user function is imported where it is applied."""

    spec: str
    name: str
    argument: float | int | None = None

    @property
    def needs_landmarks(self) -> bool:
        return bool(self.name) and BUILTINS[self.name].needs_landmarks

    def function(self) -> Callable[..., Any]:
        """The user's function (`module:function`)."""
        module, _, attr = self.spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"manipulation '{self.spec}': cannot import it: {exc}") from None

    def __call__(self, image: Image.Image, landmarks: np.ndarray | None = None) -> Image.Image:
        """The manipulated copy of a PIL image (RGB); `landmarks` (68, 2) for those that need them."""
        from PIL import Image

        pixels = np.asarray(image.convert("RGB"))
        if self.name:
            builtin = BUILTINS[self.name]
            if builtin.needs_landmarks:
                if landmarks is None:
                    raise DataError(f"manipulation '{self.spec}' needs facial landmarks; none were found")
                args: tuple[Any, ...] = (landmarks,)
            else:
                args = ()
            if self.argument is not None:
                args = (*args, self.argument)
            out: Any = builtin.fn(pixels, *args)
        else:
            out = self.function()(image.convert("RGB"))
        result = out if isinstance(out, Image.Image) else Image.fromarray(np.asarray(out, dtype=np.uint8))
        if result.size != image.size:
            raise DataError(
                f"manipulation '{self.spec}' changed the image's size from {image.size[0]}×{image.size[1]} to "
                f"{result.size[0]}×{result.size[1]}; a manipulation must keep the size"
            )
        return result.convert("RGB")


def parse_manipulation(spec: Any) -> Manipulation:
    """'rotate180', 'lowpass:8', 'scramble:3' or 'module:function'; a ConfigError with a suggestion otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a manipulation must be a name such as 'rotate180'; got {spec!r} (expected {EXAMPLES})")
    spec = spec.strip()
    name, sep, argument = spec.partition(":")
    if name not in BUILTINS:
        if sep and name and argument.isidentifier():
            return Manipulation(spec, "")  # module:function, imported when applied (and checked by `check`)
        close = difflib.get_close_matches(name, list(BUILTINS), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown manipulation '{spec}'{hint} (expected {EXAMPLES})")
    builtin = BUILTINS[name]
    if builtin.parameter == "cycles":
        try:
            cycles = float(argument)
        except ValueError:
            cycles = float("nan")
        if not (np.isfinite(cycles) and cycles > 0):
            raise ConfigError(f"manipulation '{spec}': expected '{name}:<cycles per face>', a positive number")
        return Manipulation(spec, name, cycles)
    if builtin.parameter == "seed":
        if not sep:
            return Manipulation(spec, name, 0)
        if not argument.isdigit():
            raise ConfigError(f"manipulation '{spec}': expected '{name}' or '{name}:<seed>', a whole number")
        return Manipulation(spec, name, int(argument))
    if sep:
        raise ConfigError(f"manipulation '{spec}': '{name}' takes no argument")
    return Manipulation(spec, name)


def check(manipulation: Manipulation) -> None:
    """Import a user's function now, so that a wrong name is a grid error rather than a failure per image."""
    if not manipulation.name and not callable(manipulation.function()):
        raise ConfigError(f"manipulation '{manipulation.spec}' is not a function")
