"""The pictures of docs/web.md: every page of the web in headless Chromium, at desktop and phone width,
as the official who uses it sees it, on a small campaign in progress (承德, 2015-03-20).

    python benchmarks/screenshots.py [--only login,home,...] [--out docs/screenshots]

It builds the campaign in a temporary SQLite database through the services, each step at its own time
(the counties' plans in December 2014, the provincial demonstration townships started in January: one
accepted, two applied, one sent back to rectify, 峪耳崖镇 still building with three items missing),
serves the app in-process with the clock stopped at 2015-03-20 10:00, signs each official in through
/login, and saves docs/screenshots/<page>-desktop.png (1366 px wide) and <page>-phone.png (390 px), the
whole height of the page, reduced to a 256-colour palette. A page that answers 404 has not landed on this
branch yet and is skipped (said so). Anything a page fetches from another origin or logs as an error in
the console is printed as a problem, and the script then exits 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support (officials, checklists), support_server, support_browser

SHOWN_AT = "2015-03-20T10:00"  # the clock of every page
OUT = ROOT / "docs" / "screenshots"
PASSWORD = "screenshot-password-1"
# page name → (official, path): each page as the official who works with it
PAGES = {
    "login": (None, "/login"),
    "home": ("chief_yuerya", "/"),
    "unit-township": ("chief_yuerya", "/units/130827102"),
    "unit-county": ("li", "/units/130827"),
    "unit-city": ("office", "/units/130800"),
    "queue": ("wang", "/queue"),
    "dashboard": ("office", "/dashboard"),
    "history": ("office", "/history"),
    "officials": ("office", "/officials"),
}
OFFICIALS = {"chief_yuerya": ("township_chief", "130827102"), "li": ("county_official", "130827"),
             "wang": ("city_inspector", "130800"), "office": ("city_office", "130800")}
COUNTY_PLANS = {"130802": "2014-12-18T09:00", "130803": "2014-12-22T09:00", "130804": "2014-12-29T09:00",
                "130821": "2014-12-26T09:00", "130822": "2014-12-29T09:00", "130824": "2014-12-24T09:00",
                "130825": "2014-12-24T09:00", "130826": "2014-12-30T09:00", "130827": "2014-12-20T09:00",
                "130828": "2015-01-12T09:00", "130871": "2014-12-19T09:00", "130881": "2015-01-08T09:00"}
PROVINCIAL = "provincial_demo"


def build_campaign(db, folder: Path) -> None:
    """The campaign up to SHOWN_AT, every step through the services at its own time, in time order."""
    from support import T0, add_officials, at, record_checklist

    from anjian.workflow.services.advance import advance
    from anjian.workflow.services.checklist import record
    from anjian.workflow.services.registry import initialize
    from anjian.workflow.services.stages import tick_city

    initialize(db, None, None, T0, "admin")
    add_officials(db, OFFICIALS | {f"county_{c}": ("county_official", c) for c in COUNTY_PLANS if c != "130827"})
    plan = folder / "推进方案.pdf"
    plan.write_bytes(b"%PDF-1.4 plan")
    steps = []

    def step(when: str, fn) -> None:
        steps.append((when, len(steps), fn))

    for county, when in COUNTY_PLANS.items():
        who = "li" if county == "130827" else f"county_{county}"
        step(when, lambda c=county, w=who, t=when: record(db, c, "county.leadership_group", "组长：县长", w, at(t)))
        step(when, lambda c=county, w=who, t=when: advance(db, c, "submit_plan", w, at(t), evidence=(str(plan),)))
    step("2015-01-01T00:05", lambda: tick_city(db, at("2015-01-01T00:05")))

    def township(code: str, start: str, apply: str | None = None, verdict: tuple[str, str, str] | None = None,
                 skip: tuple[str, ...] = (), who: str = "office") -> None:
        step(start, lambda: advance(db, code, "start", who, at(start)))
        step(start, lambda: record_checklist(db, code, {PROVINCIAL}, skip=skip, actor=who, now=at(start)))
        if apply:
            step(apply, lambda: advance(db, code, "apply", who, at(apply), note="申请验收"))
        if verdict:
            trigger, when, note = verdict
            step(when, lambda: advance(db, code, trigger, "wang", at(when), note=note))

    township("130821106", "2015-01-05T09:00", "2015-02-25T09:00", ("accept", "2015-03-18T10:00", "验收合格"))
    township("130827102", "2015-01-05T09:30", who="chief_yuerya",
             skip=("six.testing_equipment", "staff.part_time", "duty.principal_leader"))
    township("130824106", "2015-01-12T09:00", "2015-03-10T09:00")
    township("130826100", "2015-01-08T09:00", "2015-03-05T09:00")
    township("130881107", "2015-01-15T09:00", "2015-02-28T09:00",
             ("reject", "2015-03-12T10:00", "应急预案未组织演练；安全监管台账不完整，整改后再申请验收"))
    for code, when in {"130827103": "2015-02-02T09:00", "130821102": "2015-02-09T09:00",
                       "130802001": "2015-02-16T09:00"}.items():
        step(when, lambda c=code, t=when: advance(db, c, "start", "office", at(t)))
    for _when, _order, fn in sorted(steps, key=lambda s: (s[0], s[1])):
        fn()


def pictures_missing() -> list[str]:
    """The pictures docs/web.md shows that are not in docs/ (yet)."""
    import re

    doc = ROOT / "docs" / "web.md"
    shown = re.findall(r'<img src="([^"]+)"', doc.read_text(encoding="utf-8")) if doc.exists() else []
    return [name for name in shown if not (doc.parent / name).exists()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"pages, comma-separated (default all: {','.join(PAGES)})")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    chosen = args.only.split(",") if args.only else list(PAGES)
    unknown = [p for p in chosen if p not in PAGES]
    if unknown:
        raise SystemExit(f"no page {', '.join(unknown)}; pages: {', '.join(PAGES)}")

    import time_machine
    from support_browser import WHY_NOT, desktop, new_driver, phone, screenshot, set_password, sign_in, visit
    from support_server import serving

    from anjian.workflow.clock import parse_time
    from anjian.workflow.settings import resolve
    from anjian.workflow.store.db import Database

    if WHY_NOT:
        raise SystemExit(f"headless Chromium unavailable: {WHY_NOT}")
    problems, made = [], []
    with tempfile.TemporaryDirectory(prefix="anjian-screens-") as folder:
        url = f"sqlite:///{Path(folder) / 'anjian.db'}"
        db = Database(url)
        drivers: dict = {}
        try:
            build_campaign(db, Path(folder))
            with time_machine.travel(parse_time(SHOWN_AT, "now"), tick=False):
                for official in {PAGES[p][0] for p in chosen} - {None}:
                    set_password(db, official, password=PASSWORD)
                with serving(db, resolve(url, env={"ANJIAN_HOME": str(Path(folder) / "home")})) as served:
                    for page in chosen:
                        official, path = PAGES[page]
                        if official not in drivers:
                            drivers[official] = new_driver()
                            if official is not None:
                                sign_in(drivers[official], served.url, official, PASSWORD)
                        driver = drivers[official]
                        for width, size in (("desktop", desktop), ("phone", phone)):
                            size(driver)
                            shown = visit(driver, served.url + path)
                            if shown.status == 404:
                                print(f"{page:<14} {path:<20} 404: not on this branch yet, skipped")
                                break
                            if shown.status != 200 or shown.path != path.split("?")[0]:
                                problems.append(f"{page}: {path} answered {shown.status}, shown {shown.path}")
                                break
                            problems += [f"{page}: fetched {u}" for u in shown.foreign(served.url)]
                            problems += [f"{page}: console: {e['message']}" for e in shown.errors]
                            target = args.out / f"{page}-{width}.png"
                            made.append((target, screenshot(driver, target)))
                        desktop(driver)
        finally:
            for driver in drivers.values():
                driver.quit()
            db.dispose()
    for target, size in made:
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}  {size:,} bytes")
    missing = pictures_missing()
    if missing:
        print(f"docs/web.md shows {len(missing)} picture(s) not drawn yet (their pages have not landed?): "
              + ", ".join(missing))
    for problem in problems:
        print("PROBLEM:", problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
