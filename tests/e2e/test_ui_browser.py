"""`airstep ui` in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
which .ci/run installs) driven by Selenium over the UI served from a real local run. Screenshots of
each page land in tests/artifacts/screenshots/ (CI keeps them)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from test_ui import ran  # noqa: F401 - the module's fixture: a real local run and the UI over it

from airstep_ui.server import serve

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("AIRSTEP_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromium-driver are required here (apt install chromium chromium-driver)")
        pytest.skip("chromium or chromium-driver is not installed (apt install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(ran):  # noqa: F811 - the fixture imported above
    app, run_id = ran
    server = serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", run_id
    server.shutdown()
    server.server_close()


def test_a_user_goes_from_the_dags_to_a_failed_trys_traceback(browser, site):
    from selenium.webdriver.common.by import By

    base, run_id = site
    browser.get(base + "/")
    assert browser.title == "DAGs - airstep"
    browser.save_screenshot(str(SCREENSHOTS / "dags.png"))
    browser.find_element(By.LINK_TEXT, "pipeline").click()

    assert browser.find_element(By.TAG_NAME, "h1").text == "pipeline"
    rows = [row.get_attribute("data-task-id") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-task-id]")]
    assert rows == ["extract", "transform.clean", "transform.check", "load"]
    browser.save_screenshot(str(SCREENSHOTS / "grid.png"))
    browser.find_element(By.CSS_SELECTOR, "tr.group-row").click()  # the task group folds
    hidden = [
        r.get_attribute("data-task-id")
        for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-task-id]")
        if not r.is_displayed()
    ]
    assert hidden == ["transform.clean", "transform.check"]
    browser.find_element(By.CSS_SELECTOR, f'a[href="/dags/pipeline/runs/{quote(run_id, safe="")}"]').click()

    assert browser.find_element(By.TAG_NAME, "h1").text == run_id
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.graph g.task")
    states = {n.get_attribute("data-task-id"): n.get_attribute("data-state") for n in nodes}
    assert states == {
        "extract": "success",
        "transform.clean": "success",
        "transform.check": "success",
        "load": "failed",
    }
    assert all(n.is_displayed() and n.size["width"] > 0 for n in nodes)
    x = {n.get_attribute("data-task-id"): n.rect["x"] for n in nodes}
    assert x["extract"] < x["transform.clean"] < x["transform.check"] < x["load"]  # left to right
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.gantt g.bar")
    assert [b.get_attribute("data-task-id") for b in bars][0] == "extract" and len(bars) == 5
    y = [b.rect["y"] for b in bars]
    assert y == sorted(y)
    tries = bars[-1].find_elements(By.CSS_SELECTOR, "rect.try")  # load's two tries, the retry's wait between
    assert [t.get_attribute("data-try") for t in tries] == ["1", "2"]
    wait = bars[-1].find_element(By.CSS_SELECTOR, "rect.waiting")
    assert tries[0].rect["x"] < wait.rect["x"] < tries[1].rect["x"] and all(t.is_displayed() for t in tries)
    browser.save_screenshot(str(SCREENSHOTS / "run.png"))

    browser.find_element(By.CSS_SELECTOR, 'tr[data-task-id="load"] a.log-link:last-of-type').click()
    log = browser.find_element(By.CSS_SELECTOR, "pre.log").text
    assert "Traceback (most recent call last)" in log and "RuntimeError: the warehouse refused 30" in log
    browser.save_screenshot(str(SCREENSHOTS / "log.png"))


def test_an_unknown_run_is_a_page_that_says_so(browser, site):
    from selenium.webdriver.common.by import By

    base, _ = site
    browser.get(base + "/dags/pipeline/runs/nope")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "no run 'nope' of 'pipeline'" in browser.find_element(By.CSS_SELECTOR, "p.error").text


def test_a_trigger_with_an_invalid_param_is_refused_naming_the_param(browser, site):
    from selenium.webdriver.common.by import By

    base, _ = site
    browser.get(base + "/dags/pipeline")
    browser.find_element(By.CSS_SELECTOR, "details.trigger summary").click()
    batch = browser.find_element(By.ID, "param-batch")
    batch.clear()
    batch.send_keys("0")
    browser.find_element(By.CSS_SELECTOR, "details.trigger button[type=submit]").click()
    from selenium.webdriver.support.ui import WebDriverWait

    # the form's answer is a new page: wait for it (a loaded machine may take a moment)
    notice = WebDriverWait(browser, 20).until(lambda b: b.find_element(By.CSS_SELECTOR, "p.notice")).text
    assert notice.startswith("No run started: Invalid input for param batch")
    assert browser.find_element(By.ID, "param-batch").get_attribute("value") == "0"
    browser.save_screenshot(str(SCREENSHOTS / "trigger_refused.png"))
