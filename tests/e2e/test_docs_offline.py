"""In headless Chromium with no network (every request that is not to this studio is aborted): the API
reference (`/docs`, `/redoc`) renders its operations from assets the studio serves itself, the built
dashboard's pages run under the studio's Content-Security-Policy without a single violation, and no page
of the studio can be framed. A real `studio api` serves them, with the default rate limit (never hit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser
from tests.helpers import free_port

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
PAGES = ("/", "/jobs", "/datasets", "/registry", "/playground", "/compare")
# Collects what the page's CSP refused (Chromium also logs each to the console).
CSP_PROBE = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    _require_browser()
    port, data = free_port(), tmp_path_factory.mktemp("studio-docs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}  # default limits and hosts
    env.update(STUDIO_DATA_DIR=str(data), STUDIO_REDIS_URL="redis://127.0.0.1:9/0", STUDIO_RELAY_ENABLED="false",
               STUDIO_SCHEDULER_ENABLED="false")
    with open(data / "api.log", "w") as log:  # the child keeps its own copy of the file
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "api", "--port", str(port)], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, (data / "api.log").read_text()[-3000:]
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.time() < deadline, "studio api did not start"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def offline_page(studio):
    """A page whose every request off this machine is aborted (and recorded in `page.blocked`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        blocked: list[str] = []

        def route(r):
            host = urlsplit(r.request.url).hostname
            if host in ("127.0.0.1", "localhost") or r.request.url.startswith(("data:", "blob:")):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        context.add_init_script(CSP_PROBE)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.console_csp = []  # type: ignore[attr-defined]
        page.on("console", lambda m: "Content Security Policy" in m.text and page.console_csp.append(m.text))  # type: ignore[attr-defined]
        page.blocked = blocked  # type: ignore[attr-defined]
        yield page
        browser.close()


def test_the_api_reference_renders_offline(studio, offline_page):
    page = offline_page
    page.goto(f"{studio}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    operations = page.locator(".opblock").count()
    assert operations >= 25, operations
    assert page.locator(".opblock-summary-path", has_text="/v1/fine_tuning/jobs").count() >= 1

    page.goto(f"{studio}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']", state="attached", timeout=30_000)
    assert page.locator("[data-section-id^='operation/']").count() >= 25

    assert page.blocked == [], page.blocked  # nothing was even tried off this machine
    # ReDoc 2's bundle hard-codes one image from its CDN (a logo in the sidebar, no option turns it off): the
    # CSP stops it before any request is made, and ReDoc hides the missing image. Nothing else is refused.
    refused = [v for v in page.evaluate("window.__csp") if v != f"img-src {REDOC_LOGO}"]
    assert refused == [] and all(REDOC_LOGO in m for m in page.console_csp), (refused, page.console_csp)


def test_the_dashboard_runs_under_its_csp_and_cannot_be_framed(studio, offline_page):
    page = offline_page
    for path in PAGES:
        response = page.goto(f"{studio}{path}")
        assert response.status == 200 and response.headers["x-frame-options"] == "DENY"
        page.wait_for_selector("#root *")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], (path, page.evaluate("window.__csp"))
    assert page.console_csp == [] and page.blocked == [], (page.console_csp, page.blocked)

    # A page elsewhere (here: a blank one) that frames the studio gets an empty frame
    page.goto("about:blank")
    page.set_content(f'<iframe id="studio" src="{studio}/jobs" width="600" height="400"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#studio")
    assert frame.locator("#root").count() == 0


def test_the_plain_page_before_the_build_runs_under_its_csp(offline_page, monkeypatch, tmp_path):
    import threading

    import uvicorn

    from backend.api import home
    from backend.app import create_app
    from backend.settings import Settings

    monkeypatch.setattr(home, "FRONTEND_BUILD", tmp_path / "not-built")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(data_dir=tmp_path / "data")), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        page = offline_page
        page.goto(f"http://127.0.0.1:{port}/")
        assert "make install" in page.content()
        max_width = page.evaluate("getComputedStyle(document.body).maxWidth")
        assert max_width != "none", max_width  # its <style> (max-width: 44rem) applied
        assert page.evaluate("window.__csp") == [] and page.console_csp == []
    finally:
        server.should_exit = True
        thread.join(timeout=10)
