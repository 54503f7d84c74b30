"""The built-in model families: short grid names → "module:Class" and default kwargs, registered in `FAMILIES`
(a `registries.Registry`, which also merges the entry point group `pytest_facebench.models`).

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

from ..registries import Registry

ZOO = "pytest_facebench.zoo"
MODEL_GROUP = "pytest_facebench.models"  # the entry point group of third-party families

FAMILIES: Registry[type] = Registry(
    "model family",
    group=MODEL_GROUP,
    expected="'factory' is a built-in or registered family ({names}), 'module:Class' or 'path/file.py:Class'",
    clash_hint="rename one of them, or name the class itself as 'module:Class'",
)
FAMILIES.register("pixels", f"{ZOO}.pixels:Pixels")
FAMILIES.register("vgg16", f"{ZOO}.vgg16:Vgg16")
FAMILIES.register("clip", f"{ZOO}.clip:Clip")
FAMILIES.register("dino", f"{ZOO}.dino:Dino")
FAMILIES.register("hf", f"{ZOO}.hf:HF")
for _arch in ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet200"):
    FAMILIES.register(_arch, f"{ZOO}.iresnet:ArcFace", defaults={"arch": _arch})
FAMILIES.register("facenet", f"{ZOO}.facenet:FaceNet")
FAMILIES.register("onnx", f"{ZOO}.onnx:Onnx")
FAMILIES.register("timm", f"{ZOO}.timm:Timm")
FAMILIES.register("open_clip", f"{ZOO}.open_clip:OpenClip")
FAMILIES.register("dlib", f"{ZOO}.dlib_resnet:DlibResNet")
FAMILIES.register("dlib_torch", f"{ZOO}.dlib_resnet:DlibResNetTorch")
