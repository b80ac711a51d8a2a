"""The web page in a real browser (Debian's Chromium driven by Playwright, headless) against the real stack: Redis,
the API on real HTTP, a Celery worker, and a tiny model trained here on the synthetic set (so the verdict shown
comes from trained weights). Screenshots of the submit, progress and result pages go to ``var/screenshots``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api import create_app
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.media import TALKING_FACE
from tests.servers import RedisProcess, celery_worker, http_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
MAX_UPLOAD_MB = 8
#: What a headless Chromium needs on this kind of machine: root (no sandbox) and a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--mute-audio"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, trained_checkpoint: Path) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("ui")
    with RedisProcess() as redis:
        env = {"FTCN_DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}", "FTCN_REDIS_URL": redis.url,
               "FTCN_STORAGE_URL": (root / "storage").as_uri(), "FTCN_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
               "FTCN_SECRET_KEY": "browser-test"}
        settings = Settings.from_env(env)
        app = create_app(settings)
        model_id = register_model(settings, trained_checkpoint, "synthetic tiny", default=True)
        token = make_token(settings, "browser", "browser test")
        with http_app(app) as base, celery_worker(env) as worker:
            deadline = time.monotonic() + 90
            while requests.get(base + "/readyz", timeout=10).status_code != 200:
                assert worker.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
            yield {"base": base, "token": token, "model_id": model_id, "worker_log": worker.log_path,
                   "storage": root / "storage"}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (apt-get install chromium); `make test` installs it as root")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(page, expression: str, timeout_s: float = 30) -> None:
    """Poll a page expression from Python (``page.wait_for_function`` evaluates strings in the page, which the
    page's Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        time.sleep(0.1)


def sign_in(page, stack: dict) -> None:
    page.goto(stack["base"] + "/")
    assert page.url.endswith("/ui/")
    page.wait_for_selector("#token-panel:not([hidden])")
    page.fill("#token-input", "ftcn_wrong")
    page.click("#token-form button")
    page.wait_for_selector("#token-error:not([hidden])")
    page.fill("#token-input", stack["token"])
    page.click("#token-form button")
    page.wait_for_selector("#content:not([hidden])")


def test_upload_follow_and_watch_the_verdict(browser, stack: dict) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    sign_in(page, stack)  # (its deliberately wrong token logs a 401: errors are collected from here on)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # submit: the size limit is shown before anything is uploaded; a file is picked through the real input
    assert page.inner_text("#size-limit") == f"{MAX_UPLOAD_MB} MB"
    page.wait_for_selector(f"#model-select option[value='{stack['model_id']}']", state="attached")
    page.set_input_files("#video-input", str(TALKING_FACE))
    assert TALKING_FACE.name in page.inner_text("#chosen-file")
    assert page.is_hidden("#upload-progress")
    shot(page, "1-submit")
    page.click("#submit-button")

    # follow: the job page polls; no verdict is on the page before the job has succeeded
    page.wait_for_url("**/ui/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#job-status:has-text('Waiting'), #job-status:has-text('Running')", timeout=30_000)
    assert page.is_hidden("#verdict")
    try:  # a screenshot with a stage and some progress, if the job is not already past it
        page.wait_for_selector("#job-status:has-text('Running: finding'), #job-status:has-text('Running: scoring')",
                               timeout=20_000)
    except Exception:  # noqa: BLE001 - the screenshot is then of whatever state the job is in
        pass
    if page.is_hidden("#verdict"):
        assert page.evaluate("document.getElementById('job-progress').value") < 100
    shot(page, "2-progress")

    # result
    page.wait_for_selector("#verdict:not([hidden])", timeout=240_000)
    job = requests.get(f"{stack['base']}/jobs/{job_id}", headers={"Authorization": f"Bearer {stack['token']}"},
                       timeout=10).json()
    assert job["status"] == "succeeded", job
    verdict = job["result"]["verdict"]
    assert page.inner_text("#verdict-word") == verdict.replace("_", " ")
    assert f"{job['result']['threshold']:.3f}" in page.inner_text("#verdict-words")
    # beside the verdict, which model made it and what it knows: this one learnt from synthetic videos only
    card = page.inner_text("#model-card")
    assert card == job["result"]["model_card_line"] and "synthetic set" in card
    assert "a demonstration model whose verdicts on real videos mean little" in card
    wait_until(page, "document.getElementById('annotated').readyState >= 1")
    duration = page.evaluate("document.getElementById('annotated').duration")
    assert duration > 0
    page.wait_for_selector("#chart svg")
    assert page.locator("#chart svg g.series").count() == job["result"]["faces"] == 1
    assert page.locator("#faces img").count() == 1
    assert page.evaluate("document.querySelector('#faces img').naturalWidth") > 0
    chart = page.locator("#chart svg")
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    chart.click(position={"x": box["width"] * 0.6, "y": box["height"] / 2})  # a click on the chart seeks
    wait_until(page, "document.getElementById('annotated').currentTime > 0.5")
    seek = page.evaluate("document.getElementById('annotated').currentTime")
    assert 0.3 * duration < seek < 0.8 * duration
    links = {a.inner_text(): a.get_attribute("href") for a in page.locator("#downloads a").all()}
    assert set(links) == {"result.json", "annotated video (MP4)", "timeline chart (PNG)"}
    assert requests.get(stack["base"] + links["result.json"], timeout=10).json()["verdict"] == verdict
    shot(page, "3-result")

    # keyboard: the chart takes focus and the arrow keys move the video
    page.focus("#chart")
    before = page.evaluate("document.getElementById('annotated').currentTime")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.getElementById('annotated').currentTime") < before

    # phone width: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("#chart svg")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "4-result-phone")

    # history and models
    page.click("nav >> text=History")
    page.wait_for_selector("#history tbody tr")
    assert verdict in page.inner_text("#history tbody tr:first-child")
    page.click("nav >> text=Models")
    page.wait_for_selector("#models tbody tr")
    assert "synthetic tiny" in page.inner_text("#models tbody")
    assert errors == [], errors
    context.close()


def test_a_failed_job_shows_its_reason_and_no_verdict(browser, stack: dict, tmp_path: Path) -> None:
    page = browser.new_context().new_page()
    sign_in(page, stack)
    garbage = tmp_path / "clip.mp4"
    garbage.write_bytes(b"not a video at all\n" * 100)
    page.set_input_files("#video-input", str(garbage))
    page.click("#submit-button")
    page.wait_for_url("**/ui/jobs/*")
    page.wait_for_selector("#job-error:not([hidden])", timeout=120_000)
    assert "not a readable video" in page.inner_text("#job-error")
    assert page.is_hidden("#verdict") and page.is_hidden("#media")
    # the token lives in this tab's session only: a new context (a new browser session) asks again
    other = browser.new_context().new_page()
    other.goto(stack["base"] + "/ui/jobs")
    other.wait_for_selector("#token-panel:not([hidden])")


def test_oversized_file_is_refused_before_upload(browser, stack: dict, tmp_path: Path) -> None:
    page = browser.new_context().new_page()
    sign_in(page, stack)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 1))
    page.set_input_files("#video-input", str(big))
    page.wait_for_selector("#submit-error:not([hidden])")
    assert f"largest upload is {MAX_UPLOAD_MB} MB" in page.inner_text("#submit-error")


def test_the_delete_button_erases_after_confirmation(browser, stack: dict) -> None:
    headers = {"Authorization": f"Bearer {stack['token']}"}
    answer = requests.post(stack["base"] + "/jobs/predict", headers=headers, timeout=30, data={"reuse": "false"},
                           files={"video": ("mine.mp4", TALKING_FACE.read_bytes(), "video/mp4")})
    job_id = answer.json()["id"]
    deadline = time.monotonic() + 240
    while (job := requests.get(f"{stack['base']}/jobs/{job_id}", headers=headers, timeout=10).json())["status"] in (
            "queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    stored = stack["storage"] / "jobs" / job_id
    assert job["status"] == "succeeded" and any(stored.rglob("*.mp4"))

    page = browser.new_context().new_page()
    sign_in(page, stack)
    page.goto(f"{stack['base']}/ui/jobs/{job_id}")
    page.wait_for_selector("#verdict:not([hidden])")
    page.wait_for_selector("#erase-card:not([hidden])")
    page.once("dialog", lambda dialog: dialog.dismiss())  # "Cancel" in the confirmation keeps everything
    page.click("#erase-button")
    time.sleep(1)
    assert any(stored.rglob("*.mp4")) and page.is_visible("#erase-card")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase-button")
    page.wait_for_selector("#job-status:has-text('Deleted on request')")
    assert page.is_hidden("#media") and page.is_hidden("#erase-card") and page.is_visible("#verdict")
    assert not stored.exists() or not any(p.is_file() for p in stored.rglob("*"))
    shot(page, "5-deleted")
    page.reload()  # a reload shows the erased job: verdict and status, no video
    page.wait_for_selector("#job-status:has-text('Deleted on request')")
    page.wait_for_selector("#verdict:not([hidden])")
    assert page.is_hidden("#media") and page.is_hidden("#erase-card")


def test_a_big_file_goes_by_direct_upload(browser, stack: dict) -> None:
    """Above the direct-upload size the page asks for a signed target, PUTs the file there with progress and
    submits the upload's id (the threshold is lowered in the page so the small sample counts as big)."""
    page = browser.new_context().new_page()
    sign_in(page, stack)
    page.evaluate("document.body.dataset.directUploadMb = '0'")
    page.set_input_files("#video-input", str(TALKING_FACE))
    page.click("#submit-button")
    page.wait_for_url("**/ui/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#verdict:not([hidden])", timeout=240_000)
    job = requests.get(f"{stack['base']}/jobs/{job_id}", headers={"Authorization": f"Bearer {stack['token']}"},
                       timeout=10).json()
    assert job["status"] == "succeeded" and job["params"]["upload_id"] and job["params"]["filename"] == TALKING_FACE.name


def test_a_batch_lists_its_jobs_and_report(browser, stack: dict) -> None:
    """A labelled batch of two uploads (the same clip, labelled real and fake): the history page lists the batch,
    its page lists both jobs with links to them and, once they are done, the report."""
    from api.client import Client

    client = Client(stack["base"], stack["token"])
    batch = client.batch([(str(TALKING_FACE), "real"), (str(TALKING_FACE), "fake")], name="browser batch")
    page = browser.new_context().new_page()
    sign_in(page, stack)
    page.goto(stack["base"] + "/ui/jobs")
    page.wait_for_selector("#batches-section:not([hidden])")
    page.click(f"#batches a[href='/ui/batches/{batch['id']}']")
    page.wait_for_url(f"**/ui/batches/{batch['id']}")
    page.wait_for_selector("#batch-title:has-text('browser batch')")
    page.wait_for_selector("#batch-status:has-text('Finished')", timeout=240_000)
    page.wait_for_selector("#batch-report:not([hidden])")
    rows = page.query_selector_all("#batch-jobs tbody tr")
    assert len(rows) == 2
    assert sorted(row.query_selector_all("td")[1].inner_text() for row in rows) == ["fake", "real"]
    links = [row.query_selector("a").get_attribute("href") for row in rows]
    assert sorted(links) == sorted(f"/ui/jobs/{job['id']}" for job in batch["jobs"])
    assert "Finished" in page.inner_text("#batch-status") and "AUC" in page.inner_text("#report-figures")
    shot(page, "6-batch")
