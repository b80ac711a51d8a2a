"""Every storage key the service writes, built here and nowhere else (``jobs.storage.check_key`` is the rule every
key obeys when it is used).

Layout: ``jobs/<id>/...`` (a job's input, outputs and segments: erasing the job removes the prefix whole),
``uploads/<id>/...``, ``models/<id>/...``, ``detectors/<id>/...`` and ``datasets/<id>/...``.
"""

from __future__ import annotations


def job_prefix(job_id: str) -> str:
    """Everything stored for a job lives under this prefix: erasing the job removes it whole."""
    return f"jobs/{job_id}"


def job_input_key(job_id: str, name: str) -> str:
    """Where a job's uploaded input is stored (``name`` is ours: ``video.mp4``, ``dataset.zip``)."""
    return f"{job_input_prefix(job_id)}/{name}"


def upload_prefix(upload_id: str) -> str:
    """A direct upload's folder: swept whole when nobody used the upload."""
    return f"uploads/{upload_id}"


def upload_key(upload_id: str, name: str) -> str:
    """Where a direct upload waits for the job that will take it (then moved to that job's input)."""
    return f"{upload_prefix(upload_id)}/{name}"


def model_prefix(model_id: str) -> str:
    """A registered model's files: ``model.pt`` (its checkpoint) and, when trained here, its plots and metrics."""
    return f"models/{model_id}"


def model_key(model_id: str, name: str = "model.pt") -> str:
    return f"{model_prefix(model_id)}/{name}"


def detector_prefix(detector_id: str) -> str:
    """A registered detector's weight files (``jobs.detectors.RETINAFACE_FILES`` names them)."""
    return f"detectors/{detector_id}"


def detector_key(detector_id: str, name: str) -> str:
    return f"{detector_prefix(detector_id)}/{name}"


def dataset_prefix(dataset_id: str) -> str:
    """A preprocessed dataset's clips and manifest."""
    return f"datasets/{dataset_id}"


def job_input_prefix(job_id: str) -> str:
    """A job's input, removed on its own when the input is erased and the result kept."""
    return f"{job_prefix(job_id)}/input"


def segment_result_key(job_id: str, index: int) -> str:
    """One segment's partial result (``jobs.segments``), merged when every segment is done."""
    return job_artifact_key(job_id, f"segments/{index}.json")


def job_artifact_key(job_id: str, name: str) -> str:
    """Where a job's outputs are stored (result.json, annotated.mp4, faces/..., checkpoints)."""
    return f"{job_prefix(job_id)}/{name}"
