"""How images are prepared for a backbone: one definition shared by training, evaluation and export."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tlstudio.core.catalog.backbones import BackboneSpec
from tlstudio.core.errors import UserError


@dataclass(frozen=True)
class Preprocessing:
    input_size: int  # the square crop the network sees
    resize_size: int  # short side before the centre crop (evaluation)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # "bilinear" | "bicubic"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(
            input_size=int(d["input_size"]),
            resize_size=int(d["resize_size"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            interpolation=str(d["interpolation"]),
        )


def preprocessing_for(spec: BackboneSpec, image_size: int | None = None) -> Preprocessing:
    """The spec's own preprocessing, optionally at another input size (the resize keeps the spec's crop ratio)."""
    size = spec.input_size if image_size is None else int(image_size)
    if size < 32 or size > 1024:
        raise UserError(f"--image-size {size} is out of range: use 32 to 1024 pixels (the backbone's own is {spec.input_size}).")
    smallest = max(32, spec.min_input_size)
    if size < smallest:
        raise UserError(f"--image-size {size} is too small for backbone '{spec.name}': use {smallest} px or more (its own is {spec.input_size}).")
    if spec.fixed_input_size and size != spec.input_size:
        raise UserError(f"backbone '{spec.name}' only takes {spec.input_size} px images: leave --image-size at {spec.input_size}.")
    resize = round(size * spec.resize_size / spec.input_size)
    return Preprocessing(size, resize, tuple(spec.mean), tuple(spec.std), spec.interpolation)
