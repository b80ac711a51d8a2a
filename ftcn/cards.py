"""Model cards: what a model was trained on, how it did on validation, its threshold and its intended use, shown
beside every verdict it makes (result.json, the job view, the web page).

A card is derived from the checkpoint (the official weights, or ``ftcn train``'s metadata, which records whether
the training data came from ``ftcn synth``) and may be completed when the model is registered
(``ftcn-admin register-model --training-data ... --intended-use ...``). A model trained only on synthetic data is
a demonstration model, and its card says so in the words users read next to the verdict.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from ftcn.checkpoints import Checkpoint
from ftcn.precision import fastest_passed

#: The words shown beside a synthetic-only model's verdicts, and its intended use in full.
DEMONSTRATION_WORDS = "a demonstration model whose verdicts on real videos mean little"
DEMONSTRATION = f"{DEMONSTRATION_WORDS}: it was trained only on the project's synthetic videos"
OFFICIAL_DATA = "FaceForensics++ (the official FTCN+TT weights, ftcn_tt.pth)"
OFFICIAL_FIGURES = "paper: video-level AUC 86.9 on Celeb-DF, 98.8 on FaceShifter (ICCV 2021)"
DEFAULT_USE = ("screening face videos for temporally incoherent face forgeries; a verdict is evidence for a human "
               "reviewer, not proof")
FIELDS = ("training_data", "validation", "intended_use", "demonstration")


def card_from_checkpoint(checkpoint: Checkpoint) -> dict[str, Any]:
    """The card a checkpoint implies: the official weights, a model trained here (on synthetic data or a named
    dataset), or a checkpoint that says nothing of its training."""
    if checkpoint.source_format == "official":
        return {"training_data": OFFICIAL_DATA, "validation": OFFICIAL_FIGURES, "threshold": checkpoint.threshold,
                "intended_use": DEFAULT_USE, "demonstration": False, "arithmetic": arithmetic(checkpoint.metadata)}
    meta = checkpoint.metadata or {}
    origin = meta.get("training_data") or {}
    synthetic = bool(origin.get("synthetic"))
    best = (meta.get("best_val") or {}).get("video") or {}
    validation = (f"validation videos: AUC {best['auc']:.3f}, accuracy {best['accuracy']:.3f} "
                  f"({best.get('count')} videos)" if best.get("auc") is not None and best.get("accuracy") is not None
                  else "no validation figures recorded")
    if synthetic:
        data = "the synthetic set of ftcn synth" + (f" (methods: {', '.join(origin['methods'])})"
                                                     if origin.get("methods") else "")
    else:
        # the dataset by its own name only: a card is shown to users, and a server path is not for them
        named = PurePosixPath(str(meta["dataset"]).rstrip("/")).name if meta.get("dataset") else ""
        data = origin.get("name") or (f"the dataset {named}" if named else "unrecorded data")
    return {"training_data": data, "validation": validation, "threshold": checkpoint.threshold,
            "intended_use": DEMONSTRATION if synthetic else DEFAULT_USE, "demonstration": synthetic,
            "arithmetic": arithmetic(meta)}


def arithmetic(metadata: dict[str, Any] | None) -> str:
    """What the card says of the number formats the model may run in (``ftcn.precision_check``)."""
    record = (metadata or {}).get("precision")
    if not record:
        return "fp32: no precision check recorded (ftcn check-precision judges bf16 and int8 on labelled videos)"
    rows = {row["precision"]: row for row in record.get("checked", [])}
    parts = []
    for name, row in rows.items():
        if name == "fp32":
            continue
        figures = (f"AUC {row['auc']:.3f} against fp32's {row['auc_fp32']:.3f}, {row['agreement']:.1%} same "
                   f"verdicts on {row['videos']} validation videos" if row.get("auc") is not None else row["why"])
        parts.append(f"{name} {'passed' if row['passed'] else 'refused'} ({figures})")
    fastest = fastest_passed(record.get("passed")).value
    return f"runs in {fastest}; " + "; ".join(parts) if parts else f"runs in {fastest}"


def complete(card: dict[str, Any], **given: Any) -> dict[str, Any]:
    """The card with the fields an operator gave at registration (None: keep the derived value)."""
    return {**card, **{key: value for key, value in given.items() if value is not None}}


def card_line(name: str, card: dict[str, Any] | None) -> str:
    """One line for beside a verdict: the model, its training data, and what its verdicts are worth."""
    if not card:
        return f"Model {name}: no model card."
    line = f"Model {name}, trained on {card.get('training_data', 'unrecorded data')}"
    if card.get("demonstration"):
        return f"{line}: {DEMONSTRATION_WORDS}."
    return f"{line}; {card.get('validation', 'no validation figures')}."
