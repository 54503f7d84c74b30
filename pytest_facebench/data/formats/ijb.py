"""IJB-B / IJB-C meta files as insightface distributes them (``recognition/_evaluation_/ijb``).

* ``<name>_face_tid_mid.txt``: ``image_name template_id media_id``
* ``<name>_template_pair_label.txt``: ``template_1 template_2 label`` (1:1 verification)
* ``<name>_name_5pts_score.txt``: ``image_name x1 y1 ... x5 y5 faceness_score``
* ``<name>_1N_gallery_G1.csv`` / ``_G2`` (IJB-B: ``_S1`` / ``_S2``), ``<name>_1N_probe_mixed.csv``:
  comma separated with a header, template id and subject id in the first two columns (1:N).

Readers return DataFrames with a 1-based ``_line`` column and raise a one-line ``DataError`` naming the
file and line. Parsing goes through pandas' C reader (IJB-C's pair file has 15.7 M lines); only when it
fails is the file scanned line by line to say exactly which line is wrong and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, list_some

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FACE_COLUMNS",
    "LANDMARK_COLUMNS",
    "PAIR_COLUMNS",
    "SUBJECT_COLUMNS",
    "IJBLayout",
    "attach_landmarks",
    "check_pair_templates",
    "check_templates_have_images",
    "ijb_layout",
    "landmarks_array",
    "read_face_tid_mid",
    "read_landmarks",
    "read_template_pairs",
    "read_template_subjects",
]

# role -> (default 0-based field, kind); kinds: "str", "int" (integral ids/labels), "float" (finite numbers)
FACE_COLUMNS: dict[str, tuple[int, str]] = {"image": (0, "str"), "template_id": (1, "int"), "media_id": (2, "int")}
PAIR_COLUMNS: dict[str, tuple[int, str]] = {"template_1": (0, "int"), "template_2": (1, "int"), "label": (2, "int")}
LANDMARK_COLUMNS: dict[str, tuple[int, str]] = {
    "image": (0, "str"),
    **{f"{axis}{k}": (2 * k - 1 + (axis == "y"), "float") for k in range(1, 6) for axis in ("x", "y")},
    "faceness": (11, "float"),
}
SUBJECT_COLUMNS: dict[str, tuple[int, str]] = {"template_id": (0, "int"), "subject_id": (1, "int")}
POINT_COLUMNS = [f"{axis}{k}" for k in range(1, 6) for axis in ("x", "y")]


# ------------------------------------------------------------------------------ parsing


def _roles(
    defaults: dict[str, tuple[int, str]], columns: Mapping[str, int] | None, path: Path
) -> dict[str, tuple[int, str]]:
    roles = dict(defaults)
    for role, index in (columns or {}).items():
        if role not in defaults:
            raise DataError(
                f"{path}: unknown column role {role!r} in the column mapping; expected one of {list(defaults)}"
            )
        if not isinstance(index, (int, np.integer)) or index < 0:
            raise DataError(f"{path}: column role {role!r} maps to {index!r}; expected a 0-based field index")
        roles[role] = (int(index), defaults[role][1])
    indices = [i for i, _ in roles.values()]
    if len(set(indices)) != len(indices):
        given = {r: i for r, (i, _) in roles.items()}
        raise DataError(f"{path}: the column mapping gives two roles the same field: {given}")
    return roles


def _first_field_count(path: Path, sep: str | None, skip: int = 0) -> int:
    """Fields on the first non-blank line after ``skip`` lines (0 for an empty file)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh):
            if number >= skip and line.strip():
                return len(line.rstrip("\r\n").split(sep) if sep else line.split())
    return 0


def _check_field(value: str, kind: str, role: str) -> str | None:
    """Why ``value`` is not a valid ``kind`` (None when it is)."""
    if kind == "str":
        return None if value else f"{role} is empty"
    try:
        number = float(value)
    except ValueError:
        return f"{role} {value!r} is not a number"
    if kind == "int":
        if not np.isfinite(number) or number != int(number) or not value.lstrip("+-").isdigit():
            return f"{role} {value!r} is not an integer id"
        return None
    if np.isnan(number):
        return f"{role} is NaN"
    if not np.isfinite(number):
        return f"{role} is {value!r}; expected a finite number"
    return None


def _diagnose(path: Path, n_fields: int, roles: dict[str, tuple[int, str]], sep: str | None, skip: int) -> str | None:
    """Scan the file for the first malformed line: 'line N: why'."""
    with open(path, encoding="utf-8", errors="strict", newline=None) as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if number <= skip:
                    continue
                text = line.rstrip("\r\n")
                fields = text.split(sep) if sep else text.split()
                if sep:
                    fields = [f.strip() for f in fields]
                if not text.strip():
                    return f"line {number}: empty line; expected {n_fields} fields"
                if len(fields) != n_fields:
                    names = " ".join(roles_in_order(roles, n_fields))
                    return f"line {number}: {len(fields)} fields; expected {n_fields} ({names})"
                for role, (index, kind) in roles.items():
                    why = _check_field(fields[index], kind, role)
                    if why:
                        return f"line {number}: {why}"
        except UnicodeDecodeError as exc:
            return f"line {number + 1}: not UTF-8 text ({exc.reason})"
    return None


def roles_in_order(roles: dict[str, tuple[int, str]], n_fields: int) -> list[str]:
    """Field names in file order ('?' for fields no role reads), for messages."""
    names = ["?"] * n_fields
    for role, (index, _) in roles.items():
        if index < n_fields:
            names[index] = role
    return names


def _read_table(
    path: Path | str,
    defaults: dict[str, tuple[int, str]],
    columns: Mapping[str, int] | None,
    n_fields: int | None,
    *,
    sep: str | None = None,
    header: bool = False,
) -> pd.DataFrame:
    """Parse a whitespace- (or ``sep``-) separated table into role columns plus ``_line``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    roles = _roles(defaults, columns, path)
    if n_fields is None:
        n_fields = _first_field_count(path, sep) if header or columns is not None else len(defaults)
    need = max(i for i, _ in roles.values()) + 1
    if n_fields < need:
        raise DataError(
            f"{path}: line {1 if not header else 2}: {n_fields} fields; the column roles need at least {need} "
            f"({' '.join(roles_in_order(roles, need))})"
        )
    dtypes: dict[int, Any] = dict.fromkeys(range(n_fields), str)
    dtypes.update(
        {i: (str if kind == "str" else np.int64 if kind == "int" else np.float64) for i, kind in roles.values()}
    )
    skip = 1 if header else 0
    try:
        # Every field is read (usecols would drop extra fields silently), and the first data line must
        # have exactly n_fields: pandas would take surplus leading fields of the first line as an index.
        if _first_field_count(path, sep, skip) not in (0, n_fields):
            raise ValueError("the first data line has a different field count")
        frame = pd.read_csv(
            path,
            sep=sep if sep else r"\s+",
            header=None,
            names=list(range(n_fields)),
            index_col=False,
            dtype=dtypes,
            skiprows=skip,
            skip_blank_lines=False,
            keep_default_na=False,
            na_filter=False,
            engine="c",
            encoding="utf-8",
        )
    except Exception as exc:  # noqa: BLE001 - pandas raises ParserError/ValueError/UnicodeError...; diagnose ourselves
        why = _diagnose(path, n_fields, roles, sep, skip)
        raise DataError(f"{path}: {why}" if why else f"{path}: cannot parse ({type(exc).__name__}: {exc})") from None
    suspicious = any(
        (kind == "float" and not np.isfinite(frame[index].to_numpy()).all())
        or (kind == "str" and (frame[index].isna().any() or (frame[index] == "").any()))
        for index, kind in roles.values()
    ) or any((frame[i] == "").any() for i in range(n_fields) if dtypes[i] is str)  # a short line's missing fields
    if suspicious:  # a NaN point, or a line with missing fields: find it (an empty CSV field alone is fine)
        why = _diagnose(path, n_fields, roles, sep, skip)
        if why:
            raise DataError(f"{path}: {why}")
    if len(frame) == 0:
        raise DataError(f"{path}: no rows; expected lines of {' '.join(roles_in_order(roles, n_fields))}")
    out = pd.DataFrame({role: frame[index].to_numpy() for role, (index, _) in roles.items()})
    out["_line"] = np.arange(1 + skip, len(out) + 1 + skip, dtype=np.int64)
    out.attrs["path"] = str(path)
    return out


# ------------------------------------------------------------------------------ readers


def read_face_tid_mid(
    path: Path | str, *, columns: Mapping[str, int] | None = None, n_fields: int | None = None
) -> pd.DataFrame:
    """``*_face_tid_mid.txt`` → columns ``image, template_id, media_id, _line``.

    ``columns`` maps roles to 0-based fields (e.g. ``{"template_id": 2, "media_id": 1}``); ``n_fields``
    is the field count every line must have (default: 3, or the first line's count with a mapping)."""
    return _read_table(path, FACE_COLUMNS, columns, n_fields)


def read_template_pairs(
    path: Path | str,
    *,
    columns: Mapping[str, int] | None = None,
    n_fields: int | None = None,
    faces: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``*_template_pair_label.txt`` → ``template_1, template_2, label, _line`` (labels 0/1).

    With ``faces`` (from :func:`read_face_tid_mid`), a pair naming a template without images is an error."""
    path = Path(path)
    pairs = _read_table(path, PAIR_COLUMNS, columns, n_fields)
    labels = pairs["label"].to_numpy()
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad):
        raise DataError(f"{path}: line {pairs['_line'].iat[bad[0]]}: label {labels[bad[0]]}; expected 0 or 1")
    if faces is not None:
        check_pair_templates(pairs, faces, path)
    return pairs


def read_landmarks(
    path: Path | str, *, columns: Mapping[str, int] | None = None, n_fields: int | None = None
) -> pd.DataFrame:
    """``*_name_5pts_score.txt`` → ``image, x1, y1, ..., x5, y5, faceness, _line``; duplicate images are errors."""
    path = Path(path)
    marks = _read_table(path, LANDMARK_COLUMNS, columns, n_fields)
    marks = marks[["image", *POINT_COLUMNS, "faceness", "_line"]].copy()
    marks.attrs["path"] = str(path)
    duplicated = marks["image"].duplicated(keep="first").to_numpy()
    if duplicated.any():
        i = int(np.argmax(duplicated))
        first = marks["_line"].to_numpy()[(marks["image"] == marks["image"].iat[i]).to_numpy()][0]
        raise DataError(
            f"{path}: line {marks['_line'].iat[i]}: image {marks['image'].iat[i]!r} "
            f"already has landmarks on line {first}"
        )
    return marks


def read_template_subjects(
    path: Path | str,
    *,
    columns: Mapping[str, int] | None = None,
    faces: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A 1:N gallery/probe list (``*_1N_gallery_G1.csv`` ...: comma separated, one header line) →
    one row per template: ``template_id, subject_id, _line`` (the first line of each template).

    A template listed with two subjects is an error; with ``faces``, so is a template without images."""
    path = Path(path)
    rows = _read_table(path, SUBJECT_COLUMNS, columns, None, sep=",", header=True)
    first = ~rows["template_id"].duplicated(keep="first")
    subjects = rows[first].set_index("template_id")["subject_id"]
    clash = rows["subject_id"].to_numpy() != subjects.loc[rows["template_id"]].to_numpy()
    if clash.any():
        i = int(np.argmax(clash))
        t = rows["template_id"].iat[i]
        raise DataError(
            f"{path}: line {rows['_line'].iat[i]}: template {t} has subject {rows['subject_id'].iat[i]}, "
            f"but subject {subjects.loc[t]} on line {rows['_line'][rows['template_id'] == t].iat[0]}"
        )
    out = rows[first.to_numpy()].reset_index(drop=True)
    out.attrs["path"] = str(path)
    if faces is not None:
        check_templates_have_images(out["template_id"].to_numpy(), out["_line"].to_numpy(), faces, path)
    return out


# ----------------------------------------------------------------------- cross-checks


def _faces_source(faces: pd.DataFrame) -> str:
    return str(faces.attrs.get("path", "the face/template/media file"))


def check_templates_have_images(
    template_ids: Sequence[int] | np.ndarray, lines: Sequence[int] | np.ndarray, faces: pd.DataFrame, path: Path | str
) -> None:
    """DataError naming the first listed template that has no image in ``faces``."""
    ids = np.asarray(template_ids)
    known = np.isin(ids, faces["template_id"].to_numpy())
    if not known.all():
        missing = ids[~known]
        i = int(np.argmax(~known))
        raise DataError(
            f"{path}: line {np.asarray(lines)[i]}: template {ids[i]} has no images in {_faces_source(faces)} "
            f"({len(np.unique(missing))} such template(s): {list_some(np.unique(missing).tolist())})"
        )


def check_pair_templates(pairs: pd.DataFrame, faces: pd.DataFrame, path: Path | str) -> None:
    """DataError naming the first pair line whose template has no images (an unknown template)."""
    known_ids = np.unique(faces["template_id"].to_numpy())
    for side in ("template_1", "template_2"):
        ids = pairs[side].to_numpy()
        pos = np.searchsorted(known_ids, ids).clip(max=len(known_ids) - 1)
        unknown = known_ids[pos] != ids
        if unknown.any():
            i = int(np.argmax(unknown))
            n = len(np.unique(ids[unknown]))
            raise DataError(
                f"{path}: line {pairs['_line'].iat[i]}: {side} {ids[i]} is an unknown template "
                f"(no images in {_faces_source(faces)}; {n} unknown template id(s) in {side})"
            )


def attach_landmarks(
    faces: pd.DataFrame, landmarks: pd.DataFrame, landmarks_path: Path | str | None = None
) -> pd.DataFrame:
    """``faces`` with the landmark and faceness columns of each image (joined by image name, faces' order
    kept); an image without a landmark row is an error naming its line in the faces file."""
    marks = landmarks.drop(columns=["_line"]).set_index("image")
    present = faces["image"].isin(marks.index).to_numpy()
    if not present.all():
        i = int(np.argmax(~present))
        where = landmarks_path or landmarks.attrs.get("path", "the landmark file")
        raise DataError(
            f"{where}: no landmark row for image {faces['image'].iat[i]!r} (line {faces['_line'].iat[i]} of "
            f"{_faces_source(faces)}; {int((~present).sum())} image(s) without landmarks)"
        )
    joined = marks.loc[faces["image"].to_numpy()].reset_index(drop=True)
    out = faces.reset_index(drop=True).copy()
    for col in [*POINT_COLUMNS, "faceness"]:
        out[col] = joined[col].to_numpy()
    out.attrs = dict(faces.attrs)
    return out


def landmarks_array(frame: pd.DataFrame) -> np.ndarray:
    """(N, 5, 2) float32 landmark points (x, y) from a frame with x1..y5 columns."""
    return frame[POINT_COLUMNS].to_numpy(dtype=np.float32).reshape(-1, 5, 2)


# ------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class IJBLayout:
    """Where one IJB set's files are, in insightface's layout."""

    name: str  # "IJBB" or "IJBC"
    root: Path  # the folder holding meta/ and loose_crop/
    faces: Path  # <root>/meta/<name>_face_tid_mid.txt
    pairs: Path  # <root>/meta/<name>_template_pair_label.txt
    landmarks: Path  # <root>/meta/<name>_name_5pts_score.txt
    images: Path  # <root>/loose_crop/
    gallery_1: Path | None = None  # 1:N files, None unless present
    gallery_2: Path | None = None
    probes: Path | None = None


def ijb_layout(root: Path | str, name: str = "IJBC", *, require_1n: bool = False) -> IJBLayout:
    """Find the meta files and ``loose_crop`` under ``root`` (``<root>/meta/ijbc_face_tid_mid.txt``,
    ``<root>/loose_crop/``); ``root`` may also be their parent (``<root>/IJBC/meta/...``).

    A DataError lists every missing file; the 1:N lists are required only with ``require_1n``."""
    root = Path(root)
    key = name.upper()
    if key not in ("IJBB", "IJBC"):
        raise DataError(f"{root}: unknown IJB set {name!r}; expected 'IJBB' or 'IJBC'")
    if not (root / "meta").is_dir() and (root / key / "meta").is_dir():
        root = root / key
    low, meta = key.lower(), root / "meta"
    g1, g2 = ("G1", "G2") if key == "IJBC" else ("S1", "S2")
    required = {
        "faces": meta / f"{low}_face_tid_mid.txt",
        "pairs": meta / f"{low}_template_pair_label.txt",
        "landmarks": meta / f"{low}_name_5pts_score.txt",
        "images": root / "loose_crop",
    }
    optional = {
        "gallery_1": meta / f"{low}_1N_gallery_{g1}.csv",
        "gallery_2": meta / f"{low}_1N_gallery_{g2}.csv",
        "probes": meta / f"{low}_1N_probe_mixed.csv",
    }
    checks = {**required, **(optional if require_1n else {})}
    missing = [
        str(p.relative_to(root)) + ("/" if k == "images" else "")
        for k, p in checks.items()
        if not (p.is_dir() if k == "images" else p.is_file())
    ]
    if missing:
        raise DataError(
            f"{root}: not an insightface {key} folder; missing {len(missing)} of {len(checks)}: {', '.join(missing)}"
        )
    found = {k: (p if p.is_file() else None) for k, p in optional.items()}
    return IJBLayout(
        name=key,
        root=root,
        faces=required["faces"],
        pairs=required["pairs"],
        landmarks=required["landmarks"],
        images=required["images"],
        **found,
    )
