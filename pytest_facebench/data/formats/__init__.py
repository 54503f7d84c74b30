"""Readers for face-recognition data formats: insightface ``.bin`` packs and IJB-B/C meta files.

Importing this package is cheap: pandas and PIL are imported by the functions that need them.
"""

from __future__ import annotations

from .ijb import (
    IJBLayout,
    attach_landmarks,
    check_pair_templates,
    check_templates_have_images,
    ijb_layout,
    landmarks_array,
    read_face_tid_mid,
    read_landmarks,
    read_template_pairs,
    read_template_subjects,
)
from .insightface_bin import (
    Pack,
    insightface_kfold_folds,
    known_pack_hashes,
    materialize,
    pack_cache_root,
    read_pack,
    verify_pack_images,
)

__all__ = [
    "IJBLayout",
    "Pack",
    "attach_landmarks",
    "check_pair_templates",
    "check_templates_have_images",
    "ijb_layout",
    "insightface_kfold_folds",
    "known_pack_hashes",
    "landmarks_array",
    "materialize",
    "pack_cache_root",
    "read_face_tid_mid",
    "read_landmarks",
    "read_pack",
    "read_template_pairs",
    "read_template_subjects",
    "verify_pack_images",
]
