"""Faces: detection, 5-point landmarks and alignment, declared as part of a model's preprocessing.

- `align.py`: the insightface template, the Umeyama similarity and the crops (`arcface_112`,
  `facenet_160`, `dlib_150`, `none`);
- `detect.py`: `Face` and the detectors (`dlib_hog`, `dlib_cnn`, `mtcnn`), weights loaded lazily;
- `landmarks.py`: precomputed landmarks files (CSV, IJB's `*_name_5pts_score.txt`) as a detector;
- `aligner.py`: `FaceAligner`, the picklable policy (detector, face selection, no-face policy, cache);
- `model_files.py`: dlib's model files inside `face_recognition_models`, found without importing it.

Importing this package is cheap: dlib, OpenCV and torch are imported on first use.
"""

from .align import ALIGNMENTS, ARCFACE_112, OUTPUT_SIZES, similarity_transform
from .aligner import OUTCOMES, AlignResult, FaceAligner
from .detect import Face

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
