"""The web pages in a real browser: headless Chromium through Selenium, driving a served app (support_server.serving
on loopback over a test database) the way an official does — the real /login form, real buttons, the keyboard.

    driver = new_driver()                    # headless Chromium logging the network and the console
    set_password(db, "chief_yuerya", now)    # through the credentials service, already changed once
    sign_in(driver, base_url, "chief_yuerya")
    foreign_requests(driver, base_url)       # [] : nothing fetched from another origin
    console_errors(driver)                   # [] : no SEVERE console entry (CSP violations are SEVERE too)
    phone(driver); screenshot(driver, path)  # the whole page at 390 px, as a phone shows it

Reading the browser's logs drains them: `requests_seen` and `console_errors` give what happened since the
previous reading (`forget_logs` drops it, before the page a test looks at).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PASSWORD = "browser-password-1"
PHONE = (390, 844)  # an ordinary phone's CSS viewport
DESKTOP = (1366, 900)  # the office PC's


def chromium() -> tuple[str | None, str | None, str | None]:
    """The browser, its driver, and why the browser tests cannot run (None when they can; ANJIAN_CHROMIUM
    may name the browser). Every browser test of the suite finds them here."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, None, "selenium is not installed (pip install '.[test]')"
    browser = next((p for p in (os.environ.get("ANJIAN_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                                shutil.which("chromium-browser")) if p and Path(p).exists()), None)
    driver = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and Path(p).exists()), None)
    if browser is None:
        return None, None, "no Chromium browser (apt-get install chromium)"
    if driver is None:
        return browser, None, "no chromedriver (apt-get install chromium-driver)"
    return browser, driver, None


BROWSER, DRIVER, WHY_NOT = chromium()


def new_driver(size: tuple[int, int] = DESKTOP):
    """A headless Chromium (desktop size) whose network requests and console are logged for the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if WHY_NOT is not None:
        raise RuntimeError(f"headless Chromium unavailable: {WHY_NOT}")
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={size[0]},{size[1]}", "--lang=zh-CN", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(DRIVER))


# -- officials ------------------------------------------------------------------------------------------
def set_password(db, official: str, now: dt.datetime | None = None, password: str = PASSWORD) -> None:
    """Give `official` a password of their own (set by an admin through the credentials service, then
    changed once by them, so that /login does not send them to /password)."""
    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.services import credentials
    from anjian.workflow.services.officials import os_login

    now = now or dt.datetime.now(dt.UTC)
    admin = Actor(os_login(), "admin", "130800")
    credentials.set_password(db, admin, official, password + "-first", now)
    credentials.change_password(db, official, password + "-first", password, now, "127.0.0.1")


def sign_in(driver, base_url: str, official: str, password: str = PASSWORD, expect: str | None = "/") -> None:
    """Sign in through the real /login form (typed, then its button pressed); by default waits for `/`."""
    from selenium.webdriver.common.by import By

    driver.get(base_url + "/login")
    driver.find_element(By.NAME, "username").send_keys(official)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action^='/login'] button[type=submit]").click()
    if expect is not None:
        wait_for_path(driver, expect)


def wait_for_path(driver, path: str, seconds: float = 20) -> None:
    """Wait until the browser shows `path` of the site (after a form's 303, say)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(lambda d: urlsplit(d.current_url).path == path,
                                         f"the browser never reached {path}")
    WebDriverWait(driver, seconds).until(lambda d: d.execute_script("return document.readyState") == "complete")


def path_of(driver) -> str:
    return urlsplit(driver.current_url).path


# -- what the page asked for and what it logged ---------------------------------------------------------
def requests_seen(driver) -> list[str]:
    """Every URL the browser requested since the last reading (Network.requestWillBeSent of the
    performance log): documents, style sheets, images, fonts, favicons, redirects followed."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def foreign_requests(driver, origin: str) -> list[str]:
    """The URLs requested (since the last reading) that are not on `origin` (the served app's base URL);
    a `data:` URL (an inline picture, allowed by the CSP's img-src) or `about:blank` goes nowhere."""
    home = _origin(origin)
    return [u for u in requests_seen(driver)
            if not u.startswith(("data:", "about:blank")) and _origin(u) != home]


def console_errors(driver) -> list[dict]:
    """The console's SEVERE entries since the last reading: script errors, resources that failed to load
    (a 4xx or 5xx answer included), and Content-Security-Policy violations."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def forget_logs(driver) -> None:
    """Drop what earlier pages left in the network and console logs."""
    driver.get_log("performance")
    driver.get_log("browser")


# -- sizes and pictures ---------------------------------------------------------------------------------
def phone(driver) -> None:
    """Show pages as a phone does: a 390×844 CSS viewport, mobile (the page's viewport meta applies),
    at scale 1 (a small picture)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})


def desktop(driver) -> None:
    """Show pages as the office PC does: a 1366×900 window, no phone emulation."""
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
    driver.set_window_size(*DESKTOP)


def viewport_width(driver) -> int:
    return int(driver.execute_script("return document.documentElement.clientWidth"))


def overflows_sideways(driver) -> bool:
    """Whether the page as a whole is wider than the viewport (a table must scroll in its own
    `.table-wrap`, not the page)."""
    return bool(driver.execute_script(
        "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1"))


def screenshot(driver, path: Path | str, colors: int = 256) -> int:
    """A PNG of the whole page (its full height, at the current width), reduced to a palette of `colors`
    and optimized when Pillow is there; returns its size in bytes. Images the page loads lazily are
    loaded first (a full-page capture does not scroll, so they would stay empty boxes)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return Array.from(document.images).every(i => i.complete)"), "the page's images never loaded")
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width = int(driver.execute_script("return document.documentElement.clientWidth"))
    height = max(int(size["height"]), int(driver.execute_script("return window.innerHeight")))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "fromSurface": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    data = base64.b64decode(shot["data"])
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        from PIL import Image
    except ImportError:
        target.write_bytes(data)
    else:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)
    return target.stat().st_size


# -- forms by the contract's field names ----------------------------------------------------------------
def fill(driver, name: str, value: str, within=None) -> None:
    """Give the field `name` the value `value` whatever its kind: a text or number input or a textarea
    (typed), a select (the option of that value or text), radio buttons (the one of that value), a
    checkbox (checked when the value is yes: 是/true/1/yes/on)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    scope = within or driver
    fields = scope.find_elements(By.NAME, name)
    if not fields:
        raise AssertionError(f"no field named {name!r} on {driver.current_url}")
    first = fields[0]
    tag, kind = first.tag_name.lower(), (first.get_attribute("type") or "").lower()
    if tag == "select":
        choice = Select(first)
        values = [o.get_attribute("value") for o in choice.options]
        if value in values:
            choice.select_by_value(value)
        else:
            choice.select_by_visible_text(value)
    elif kind == "radio":
        match = [f for f in fields if f.get_attribute("value") == value]
        if not match:
            raise AssertionError(f"no choice {value!r} for {name!r}")
        match[0].click()
    elif kind == "checkbox":
        want = value.strip().lower() in ("是", "true", "1", "yes", "on", "y")
        if first.is_selected() != want:
            first.click()
    else:
        first.clear()
        first.send_keys(value)


def form_of(driver, field_name: str):
    """The <form> holding the field `field_name`."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.NAME, field_name).find_element(By.XPATH, "ancestor::form[1]")


def press(form, name: str | None = None, value: str | None = None) -> None:
    """Press a form's submit button: the one with that name and value, else its first plain submit."""
    from selenium.webdriver.common.by import By

    if name is not None:
        selector = f"button[name='{name}']" + (f"[value='{value}']" if value is not None else "")
    else:
        selector = "button[type=submit]:not([name]), button:not([type]):not([name]), input[type=submit]"
    click_and_wait(form.find_element(By.CSS_SELECTOR, selector))


def click_and_wait(element, seconds: float = 30) -> None:
    """Click a submit button and wait until the page it posted from is gone (a form posted to the page
    it is on comes back to the same path: the path alone cannot say the answer has arrived)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver = element.parent
    mark = secrets.token_hex(8)
    driver.execute_script("window.__anjian_page = arguments[0]", mark)
    element.click()

    def answered(d) -> bool:
        # A new document has a new window object, without the mark. While the browser is between the
        # two documents, asking may fail in several ways (a node "does not belong to the document", no
        # execution context): that is not yet an answer, so ask again.
        try:
            return d.execute_script("return window.__anjian_page") != mark
        except WebDriverException:
            return False

    WebDriverWait(driver, seconds).until(answered, "the form's answer never came")


# -- one page, as loaded ---------------------------------------------------------------------------------
@dataclass
class Visit:
    """A page as the browser loaded it: where it ended (after redirects), the document's status and
    response headers, every URL requested meanwhile, and the console's SEVERE entries."""

    path: str
    status: int | None
    headers: dict[str, str]
    urls: list[str]
    errors: list[dict]

    def foreign(self, origin: str) -> list[str]:
        home = _origin(origin)
        return [u for u in self.urls if not u.startswith(("data:", "about:blank")) and _origin(u) != home]


def visit(driver, url: str) -> Visit:
    """Open `url` (the logs of earlier pages dropped first) and report what it took."""
    forget_logs(driver)
    driver.get(url)
    urls, status, headers = [], None, {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message.get("method") == "Network.responseReceived" and params.get("type") == "Document":
            status = params["response"]["status"]
            headers = {k.lower(): v for k, v in params["response"].get("headers", {}).items()}
    return Visit(path_of(driver), status, headers, urls, console_errors(driver))
