"""The built-in model families: short grid names → ("module:Class", default kwargs).

A grid entry `factory = "iresnet50"` builds `ArcFace(arch="iresnet50", **kwargs)`; the entry's own
`kwargs` override the defaults. Nothing heavy is imported here: each family imports its library when
it is built.

| name              | weights                                              | align       | output           |
|-------------------|------------------------------------------------------|-------------|------------------|
| pixels            | none (the resized image is the embedding)            | none        | 3·size² pixels   |
| vgg16             | 'untrained' (seeded), 'imagenet' (torch cache), path | none        | any layer        |
| clip              | hub_id (HF cache or local dir)                       | none        | image embedding  |
| dino              | hub_id (HF cache or local dir)                       | none        | last hidden state|
| hf                | hub_id: any HF vision model (AutoModel)              | none        | first output     |
| iresnet18 ... 200 | path to an arcface_torch `backbone.pth`, 'untrained' | arcface_112 | 512-D            |
| facenet           | 'vggface2', 'casia-webface' (torch cache), a path    | facenet_160 | 512-D, L2-normed |
| onnx              | path to a `.onnx` file                               | arcface_112 | first output     |
| timm              | 'pretrained' (HF cache), a path, 'untrained'         | none        | pre-logits       |
| open_clip         | pretrained = a tag (HF cache), or weights = a path   | none        | image embedding  |
| dlib              | ships with face_recognition_models                   | dlib_150    | 128-D            |
| dlib_torch        | the same, in PyTorch (or a path to a dlib .dat)      | dlib_150    | any layer, 128-D |
"""

from __future__ import annotations

from typing import Any

ZOO = "pytest_facebench.zoo"

FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "pixels": (f"{ZOO}.pixels:Pixels", {}),
    "vgg16": (f"{ZOO}.vgg16:Vgg16", {}),
    "clip": (f"{ZOO}.clip:Clip", {}),
    "dino": (f"{ZOO}.dino:Dino", {}),
    "hf": (f"{ZOO}.hf:HF", {}),
    **{
        arch: (f"{ZOO}.iresnet:ArcFace", {"arch": arch})
        for arch in ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet200")
    },
    "facenet": (f"{ZOO}.facenet:FaceNet", {}),
    "onnx": (f"{ZOO}.onnx:Onnx", {}),
    "timm": (f"{ZOO}.timm:Timm", {}),
    "open_clip": (f"{ZOO}.open_clip:OpenClip", {}),
    "dlib": (f"{ZOO}.dlib_resnet:DlibResNet", {}),
    "dlib_torch": (f"{ZOO}.dlib_resnet:DlibResNetTorch", {}),
}
