"""Faces: detection, 5-point landmarks and alignment, declared as part of a model's preprocessing.

- `face.py`: `Face`, the `Detector` interface, the insightface template and the Umeyama similarity;
- `align.py`: the crops (`arcface_112`, `facenet_160`, `dlib_150`, `none`);
- `detect.py`: the detectors (`dlib_hog`, `dlib_cnn`, `mtcnn`, `landmarks:<file>`), weights loaded lazily;
- `landmarks.py`: precomputed landmarks files (CSV, IJB's `*_name_5pts_score.txt`) as a detector;
- `aligner.py`: `FaceAligner`, the picklable policy (detector, face selection, no-face policy, cache);
- `model_files.py`: dlib's model files inside `face_recognition_models`, found without importing it,
  and the shape predictors.

Imports run one way: `aligner` → `align`, `detect`; `detect` → `landmarks`; all of them → `face`,
`model_files`. Nothing in `face.py` or `model_files.py` imports another module of this package.

Importing this package is cheap: dlib, OpenCV and torch are imported on first use.
"""

from .align import ALIGNMENTS, OUTPUT_SIZES
from .aligner import OUTCOMES, AlignResult, FaceAligner
from .face import ARCFACE_112, Face, similarity_transform

__all__ = [
    "ALIGNMENTS",
    "ARCFACE_112",
    "OUTCOMES",
    "OUTPUT_SIZES",
    "AlignResult",
    "Face",
    "FaceAligner",
    "similarity_transform",
]
