"""Each job kind's parameters, typed once for the API that stores them, the rules that read them and the worker.

A client's choices (``PredictChoices``, ``PreprocessChoices``, ``TrainChoices``) are what a request body holds:
unknown fields are refused. What a job stores (``PredictParams``, ``PreprocessParams``, ``TrainParams``) is the
choices plus what the service decided at submission (the model, the face backend, where the input is): read back
with :func:`read_params`, which ignores keys it does not know, so rows written by another version still run.
Keys are spelled here and nowhere else; ``Job.params`` stays plain JSON in the database.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


#: Face backends a job may ask for (``ftcn.faces.names``; the API does not import the ML library).
BackendName = Literal["mtcnn", "dlib", "retinaface"]
#: The standard datasets a preprocess job reads as they come on disk (``ftcn.datasets.standard``) and
#: FaceForensics++'s method names.
DatasetKindName = Literal["ffpp", "celebdf", "dfdc", "dfo"]
FfppMethod = Literal["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection"]


class Choices(BaseModel):
    """What a client sends: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Stored(BaseModel):
    """What a job row holds: keys another version wrote and this one does not know are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class PredictChoices(Choices):
    stride: int | None = Field(default=None, ge=1, le=64)
    #: None: RetinaFace when its weights are registered (GET /detectors), MTCNN otherwise.
    backend: BackendName | None = None
    detector_id: str | None = Field(default=None, max_length=36)
    max_frames: int | None = Field(default=None, ge=1)


class PreprocessChoices(Choices):
    #: the archive or prefix holds this standard dataset as downloaded; its official split is kept (``val`` is then
    #: the share of training videos made validation where the dataset has no validation split)
    dataset: DatasetKindName | None = None
    compression: Literal["raw", "c23", "c40"] | None = None
    methods: list[FfppMethod] | None = Field(default=None, min_length=1, max_length=6)
    variant: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # DeeperForensics' folder
    backend: BackendName | None = None
    detector_id: str | None = Field(default=None, max_length=36)
    max_clips: int = Field(default=8, ge=1, le=64)
    max_frames: int = Field(default=300, ge=8, le=10_000)
    face_thres: float = Field(default=0.5, ge=0, le=1)
    bbox_thres: int = Field(default=40, ge=1)  # smallest face box side (px), the reference script's flag
    clip_len: int = Field(default=8, ge=2, le=64)
    size: int = Field(default=64, ge=16, le=448)
    val: float = Field(default=0.25, ge=0, lt=1)
    test: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0

    #: The fields that choose how the videos are split, and which part of a standard dataset is read; the rest
    #: configure the preprocessing itself (``ftcn.datasets.preprocess.PreprocessConfig``).
    SPLIT_FIELDS: ClassVar[tuple[str, ...]] = ("val", "test", "seed")
    SELECTION_FIELDS: ClassVar[tuple[str, ...]] = ("dataset", "compression", "methods", "variant")


class TrainChoices(Choices):
    dataset_id: str
    freeze: bool = False
    init_model_id: str | None = None
    epochs: int = Field(default=10, ge=1, le=500)
    batch_size: int = Field(default=8, ge=1, le=256)
    lr: float = Field(default=1e-3, gt=0, le=1)
    model_size: Literal["tiny", "small", "full"] = "tiny"
    name: str | None = Field(default=None, max_length=200)
    make_default: bool = False
    #: video id (or file name) -> split, instead of the dataset's own split (the reference script's split file)
    split: dict[str, Literal["train", "val", "test"]] | None = Field(default=None, max_length=100_000)
    #: the dataset must have been preprocessed from this standard dataset (its official split then trains)
    dataset: DatasetKindName | None = None
    #: the paper's recipe (ftcn train --recipe paper); fields given here still win over it
    recipe: Literal["paper"] | None = None

    #: What the training itself takes (``ftcn.training.train.TrainConfig``); a recipe supplies those not given.
    CONFIG_FIELDS: ClassVar[tuple[str, ...]] = ("epochs", "batch_size", "lr", "model_size", "freeze")


class Notification(Stored):
    """Every kind may carry the webhook its submitter named (``jobs.webhooks.webhook_params``)."""

    webhook: dict[str, Any] | None = None


class PredictParams(Notification):
    model_id: str
    options: PredictChoices = PredictChoices()
    filename: str | None = None  # an upload's name as the client gave it
    sha256: str | None = None  # an upload's digest, taken on arrival
    video_url: str | None = None
    upload_id: str | None = None  # a direct upload (``jobs.uploads``), moved under the job when it is created
    input_key: str | None = None  # where the input is stored (set on submission, or by the worker after a fetch)
    #: false: run the model even when a finished job already answered the same content (``jobs.reuse``)
    reuse: bool = True
    item: str | None = None  # a batch's item name
    label: Literal["real", "fake"] | None = None  # a batch item's label, when known


class PreprocessParams(Notification):
    options: PreprocessChoices = PreprocessChoices()
    filename: str | None = None
    sha256: str | None = None
    s3_prefix: str | None = None
    input_key: str | None = None


class TrainParams(TrainChoices, Notification):
    model_config = ConfigDict(extra="ignore", frozen=True)

    #: With a recipe: the fields the request set, which win over the recipe's.
    given: list[str] = []

    def config_values(self, recipe_values: dict[str, Any] | None) -> dict[str, Any]:
        """The TrainConfig values: the recipe's, with the fields the request set put over them."""
        own = {name: getattr(self, name) for name in self.CONFIG_FIELDS}
        if recipe_values is None:
            return own
        return {**recipe_values, **{name: own[name] for name in self.CONFIG_FIELDS if name in self.given}}


#: Params that identify the input (and so, often, a person): an erased job keeps none of them (``jobs.erasure``).
IDENTIFYING = ("filename", "video_url", "sha256", "input_key", "s3_prefix", "item")

P = TypeVar("P", bound=Stored)


class InvalidParams(ValueError):
    """A job row whose params do not fit their kind (written by hand, or by a version with other rules): the job
    fails with this reason (``bad-option``) instead of running on values no request could have sent."""


def read_params(kind: type[P], stored: dict[str, Any] | None) -> P:
    """A job row's params as its kind's type (``Job.params`` is plain JSON)."""
    try:
        return kind.model_validate(stored or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidParams(f"the job's {where} cannot be used: {first['msg']}") from None


def new_params(kind: type[Stored], **values: Any) -> dict[str, Any]:
    """The JSON a new job row keeps: the values checked as ``kind`` (a key it does not have is a bug here, not a
    value to drop), and only those given, so rows stay as small, and as comparable for Idempotency-Key and reuse,
    as the submission made them."""
    unknown = set(values) - set(kind.model_fields)
    if unknown:
        raise TypeError(f"{kind.__name__} has no {', '.join(sorted(unknown))}")
    return kind.model_validate(values).model_dump(mode="json", exclude_unset=True)


def webhook_of(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The webhook a job or batch row records (any kind), or None."""
    return read_params(Notification, stored).webhook
