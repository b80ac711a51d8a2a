"""FaceForensics++ (Rössler et al., ICCV 2019) as its download script lays it out.

    original_sequences/youtube/<raw|c23|c40>/videos/000.mp4            the 1,000 real YouTube videos
    original_sequences/actors/<comp>/videos/01__meeting_serious.mp4   DeepFakeDetection's reals
    manipulated_sequences/<Method>/<comp>/videos/000_003.mp4          target 000's face replaced by source 003's
    splits/{train,val,test}.json                                       the official split (FaceForensics++ repository)

A split file is a list of id pairs, ``[["953", "974"], ...]`` (360/70/70 pairs): the reals 953 and 974 and, for
every method, the fakes 953_974 and 974_953. DeepFakeDetection is not in the official split: its videos come with
no split (``""``) when asked for. The paper trains on c23 with the four classic methods and holds FaceShifter out
as an unseen method, so those four are the default ``--methods``.
"""

from __future__ import annotations

from pathlib import Path

from ftcn.datasets.reading import DatasetKind, DatasetOptions, check_present, entry, load_json, relative, require_folder
from ftcn.datasets.sources import VideoEntry
from ftcn.errors import InvalidSource

TITLE = "FaceForensics++"
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
TRAINING_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")  # ftcn_tt.yaml's fake_train
COMPRESSIONS = ("raw", "c23", "c40")
SPLITS = ("train", "val", "test")
SPLIT_FORMAT = 'a JSON list of id pairs such as [["953", "974"], ...]'


def parse_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """Method names as FaceForensics++ spells them, matched without regard to case."""
    if not methods:
        return TRAINING_METHODS
    known = {m.lower(): m for m in METHODS}
    unknown = [m for m in methods if m.lower() not in known]
    if unknown:
        raise InvalidSource(f"{TITLE}: unknown method {unknown[0]!r}; one of {', '.join(METHODS)}")
    return tuple(dict.fromkeys(known[m.lower()] for m in methods))


def read_split_file(root: Path, path: Path) -> list[tuple[str, str]]:
    pairs = load_json(root, path, TITLE, f"the official split, {SPLIT_FORMAT}")
    if not isinstance(pairs, list) or not pairs:
        raise InvalidSource(f"{TITLE}: {relative(root, path)} is not {SPLIT_FORMAT}")
    checked = []
    for number, pair in enumerate(pairs, start=1):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(i, (str, int)) and str(i).isdigit() for i in pair)):
            raise InvalidSource(f"{TITLE}: {relative(root, path)}, pair {number} is {json_text(pair)}; "
                                f"expected {SPLIT_FORMAT}")
        checked.append((f"{int(pair[0]):03d}", f"{int(pair[1]):03d}"))
    return checked


def json_text(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def official_split(root: Path, splits_dir: Path) -> dict[str, str]:
    """video name (``953`` for a real, ``953_974`` for a fake) -> split, from the three official files."""
    assignment: dict[str, str] = {}
    for split in SPLITS:
        for a, b in read_split_file(root, splits_dir / f"{split}.json"):
            for name in (a, b, f"{a}_{b}", f"{b}_{a}"):
                if assignment.setdefault(name, split) != split:
                    raise InvalidSource(f"{TITLE}: video {name} is in two official splits "
                                        f"({assignment[name]} and {split})")
    return assignment


def originals(root: Path, compression: str) -> Path:
    return root / "original_sequences" / "youtube" / compression / "videos"


def read(root: Path, options: DatasetOptions) -> list[VideoEntry]:
    if options.compression not in COMPRESSIONS:
        raise InvalidSource(f"{TITLE}: compression {options.compression!r} is not one of {', '.join(COMPRESSIONS)}")
    methods = parse_methods(options.methods)
    comp = options.compression
    split_of = official_split(root, options.splits_dir or root / "splits")
    reals = require_folder(root, originals(root, comp), TITLE, f"the real videos at compression {comp}")
    entries = [entry(root, reals / f"{name}.mp4", "real", split, "", comp)
               for name, split in sorted(split_of.items()) if "_" not in name]
    for method in methods:
        folder = require_folder(root, root / "manipulated_sequences" / method / comp / "videos", TITLE,
                                f"the {method} videos at compression {comp}; choose others with --methods")
        if method == "DeepFakeDetection":  # not in the official split: every video on disk, with its actors' reals
            actors = require_folder(root, root / "original_sequences" / "actors" / comp / "videos", TITLE,
                                    "DeepFakeDetection's real videos")
            entries += [entry(root, p, "real", "", "", comp) for p in sorted(actors.glob("*.mp4"))]
            entries += [entry(root, p, "fake", "", method, comp) for p in sorted(folder.glob("*.mp4"))]
            continue
        entries += [entry(root, folder / f"{name}.mp4", "fake", split, method, comp)
                    for name, split in sorted(split_of.items()) if "_" in name]
    return check_present(root, entries, TITLE, "the official split files")


KIND = DatasetKind("ffpp", TITLE, read, "original_sequences")
