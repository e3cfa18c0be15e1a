"""The dashboard end to end: Debian's chromium, driven headless by Playwright, against a
real `trailseal serve` holding the demo hospital's month (a copy of the shared demo run).

Every page is checked with axe-core (from the npm registry; .ci/run installs it in
build/axe) and photographed into build/screenshots for a person to look at.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import need, run_cli
from trailseal.checkpoints import Checkpoint, Signer
from trailseal.testing import ServiceProcess
from trailseal.web.charts import bars
from trailseal.web.diff import changes

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("TRAILSEAL_SCREENSHOTS", ROOT / "build" / "screenshots"))
AXE = Path(os.environ.get("TRAILSEAL_AXE", ROOT / "build/axe/node_modules/axe-core/axe.min.js"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NURSE, PHYSICIAN = "n-3B-2", "p-4A-2"  # the demo's snooping nurse and 80-records physician
PATIENT = "patient/MRN-ICU-0051"  # one of the ICU records the nurse opened


@pytest.fixture(scope="module")
def hospital(
    demo_run: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """The demo's log served on loopback, with a principal of each role."""
    root = tmp_path_factory.mktemp("web") / "hospital"
    shutil.copytree(demo_run[0], root)
    data = root / "log"
    (data / "reports.yaml").write_text(
        "schedules:\n  - {name: monthly-hipaa, report: hipaa-access, cron: '0 6 1 * *',"
        " timezone: America/Chicago, params: {period: previous-month}}\n"
    )
    made = run_cli("principals", "create", "web-admin", "--role", "admin", data=data, check=True)
    service = ServiceProcess(data, orjson.loads(made.stdout)["token"])
    service.start()
    tokens = {
        role: service.principal(f"{role}-1", role) for role in ("auditor", "security", "writer")
    }
    tokens["admin"] = service.admin
    yield {"service": service, "tokens": tokens, "data": data}
    service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need(Path(CHROMIUM).exists(), "Debian's chromium", "apt-get install -y chromium")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _page(browser: object, url: str) -> object:
    # The pages' Content-Security-Policy allows only their own scripts; the test lets
    # axe-core in (test_the_pages_allow_only_their_own_scripts checks the policy).
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=url,
        viewport={"width": 1366, "height": 900},
        accept_downloads=True,
        bypass_csp=True,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


def sign_in(browser: object, hospital: dict, role: str) -> object:
    page = _page(browser, hospital["service"].url)
    page.goto("/")
    assert "/signin" in page.url  # no session: the sign-in page, remembering where to go
    page.get_by_label("API token").fill(hospital["tokens"][role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def look(page: object, name: str) -> None:
    """Photograph the page, and check it with axe-core: no serious or critical violation."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    need(AXE.exists(), "axe-core", "npm install --prefix build/axe axe-core@4 (as .ci/run does)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"
    assert not page.errors, page.errors


def test_the_auditor_sees_the_flagged_staff_on_the_overview(
    browser: object, hospital: dict
) -> None:
    page = sign_in(browser, hospital, "auditor")
    assert page.url.endswith("/")
    flagged = page.locator("ul.cases").inner_text()
    assert NURSE in flagged
    assert PHYSICIAN in flagged
    assert "More than 50 different records opened by one user in one shift" in flagged
    outside = page.get_by_role("heading", name="Accesses outside the user's unit")
    assert NURSE in outside.locator("xpath=..").inner_text()
    assert page.locator("svg.chart rect.bar").count() == 30  # a bar a day, drawn on the server
    look(page, "overview")
    # The week of the physician's shift, by naming the moment the windows end.
    page.get_by_label("Windows end at").fill("2026-10-15T23:00Z")
    page.get_by_role("button", name="Show").click()
    shift = page.get_by_role("table", name="This shift (12 hours)").inner_text()
    opened = re.search(rf"{PHYSICIAN}\s+(\d+)", shift)
    assert opened, shift
    assert int(opened[1]) >= 80  # 80 different patients, each opened at least once


def test_search_is_a_permalink_pages_without_a_cap_and_proves_an_entry(
    browser: object, hospital: dict
) -> None:
    page = sign_in(browser, hospital, "auditor")
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Query").fill(f"actor:{NURSE} resource:patient time:2026-10-10")
    page.get_by_label("Order").select_option("oldest")
    page.get_by_role("button", name="Search").click()
    assert "q=actor%3An-3B-2" in page.url  # the address is the permalink
    rows = page.locator("table.entries tbody tr")
    assert rows.count() > 0
    look(page, "search")
    again = _page(browser, hospital["service"].url)  # the permalink, in another session
    again.goto("/signin")
    again.get_by_label("API token").fill(hospital["tokens"]["auditor"])
    again.locator("input[name=next]").evaluate(
        "(e, url) => e.value = url", page.url.split(hospital["service"].url)[1]
    )
    again.get_by_role("button", name="Sign in").click()
    assert again.locator("table.entries tbody tr").count() == rows.count()

    page.goto("/search?q=action:patient.read&limit=20&order=oldest")
    first = page.locator("table.entries tbody tr td:first-child").all_inner_texts()
    page.get_by_role("link", name="Next page").click()
    second = page.locator("table.entries tbody tr td:first-child").all_inner_texts()
    assert len(first) == len(second) == 20
    assert int(second[0]) > int(first[-1])  # onward, nothing twice

    page.goto(f"/search?q=actor:{NURSE}&order=oldest")
    page.locator("table.entries tbody tr td:first-child a").first.click()
    result = page.locator("#proof-result")
    result.locator("xpath=self::*[@data-verified]").wait_for()
    assert result.get_attribute("data-verified") == "true", page.locator(
        "#proof-steps"
    ).inner_text()
    assert "Verified in your browser" in result.inner_text()
    assert page.locator("#proof-steps li.ok").count() == 4
    look(page, "entry")


def test_a_proof_the_server_altered_is_not_verified(browser: object, hospital: dict) -> None:
    """The browser's check can fail: one proof hash changed on the way fails it."""
    page = sign_in(browser, hospital, "auditor")

    def altered(route: object) -> None:
        response = route.fetch()  # type: ignore[attr-defined]
        body = response.text()
        changed = re.sub(
            r'("proof": ?\[")([0-9a-f])',
            lambda m: m[1] + ("1" if m[2] != "1" else "2"),
            body,
            count=1,
        )
        assert changed != body
        route.fulfill(response=response, body=changed)  # type: ignore[attr-defined]

    page.route("**/entries/3436", altered)
    page.goto("/entries/3436")
    result = page.locator("#proof-result")
    result.locator("xpath=self::*[@data-verified]").wait_for()
    assert result.get_attribute("data-verified") == "false"
    assert "NOT verified" in result.inner_text()


def test_a_patients_history_and_an_actors_timeline_link_both_ways(
    browser: object, hospital: dict
) -> None:
    page = sign_in(browser, hospital, "auditor")
    page.goto(f"/search?q=actor:{NURSE} resource:{PATIENT}")
    page.get_by_role("link", name=PATIENT).first.click()
    assert page.get_by_role("heading", level=1).inner_text() == f"History of {PATIENT}"
    assert NURSE in page.locator("table.entries").inner_text()
    look(page, "history")
    page.get_by_role("link", name=NURSE).first.click()
    assert page.get_by_role("heading", level=1).inner_text() == f"Timeline of {NURSE}"
    assert page.locator("a[href^='/history?resource=']").count() > 0  # and back
    page.get_by_label("From").fill("2026-10-10")
    page.get_by_label("To").fill("2026-10-10")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("link", name=PATIENT).count() > 0
    look(page, "timeline")
    # The viewer's zone, with the offset shown on every time.
    page.get_by_label("Times in").fill("America/Chicago")
    page.get_by_role("button", name="Set").click()
    assert "-05:00" in page.locator("table.entries").inner_text()  # October is CDT


def test_the_monthly_report_and_its_bundle_verify(
    browser: object, hospital: dict, tmp_path: Path
) -> None:
    page = sign_in(browser, hospital, "auditor")
    page.get_by_role("link", name="Reports").click()
    page.get_by_label("Report", exact=True).select_option("hipaa-access")
    page.get_by_label("Period").fill("2026-10")
    page.get_by_label("Format").select_option("pdf")
    scheduled = page.get_by_role("table", name="Scheduled reports").inner_text()
    assert "monthly-hipaa" in scheduled
    assert "0 6 1 * *" in scheduled
    page.get_by_role("button", name="Produce").click()
    look(page, "reports")
    with page.expect_download() as report:
        page.get_by_role("link", name="Download the report (pdf)").click()
    assert report.value.suggested_filename == "hipaa-access.pdf"
    pdf = tmp_path / "october.pdf"
    report.value.save_as(pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with page.expect_download() as bundle:
        page.get_by_role("link", name="Download its evidence bundle (zip)").click()
    path = tmp_path / "october.zip"
    bundle.value.save_as(path)
    key = run_cli("pubkey", data=hospital["data"], check=True).stdout.decode().strip()
    checked = run_cli("verify-bundle", path, "--vkey", key)
    assert checked.returncode == 0, checked.stderr
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    assert run_cli("verify-bundle", path, "--vkey", key).returncode != 0


def test_security_moves_an_alert_through_triage(browser: object, hospital: dict) -> None:
    page = sign_in(browser, hospital, "security")
    page.get_by_role("link", name="Alerts").click()
    case = page.locator("section.case", has_text="Case: a-2")
    assert case.locator("tbody tr").count() == 2  # one actor's alerts, one case
    look(page, "alerts")
    page.goto("/alerts?actor=" + NURSE)
    page.locator("section.case tbody tr td:first-child a").first.click()
    number = page.url.rsplit("/", 1)[1]
    page.get_by_label("Note").fill("asked the charge nurse")
    page.get_by_role("button", name="Mark under review").click()
    assert "under review" in page.locator("dl").inner_text()
    page.get_by_label("Note").fill("she covered an ICU shift that day: roster was stale")
    page.get_by_label("explained").check()
    page.get_by_role("button", name="Close").click()
    state = page.locator("dl").inner_text()
    assert "closed" in state
    assert "explained" in state
    history = page.locator("ol.history").inner_text()
    assert "alert.acknowledged" in history
    assert "alert.resolved" in history
    assert "roster was stale" in history
    look(page, "alert")
    page.locator("dd a[href^='/entries/']").first.click()  # evidence, one click away
    assert page.get_by_role("heading", level=1).inner_text().startswith("Entry ")
    with hospital["service"].client(hospital["tokens"]["auditor"]) as api:
        found = api.get(f"/v1/alerts/{number}").json()
    assert found["status"] == "resolved"
    assert found["disposition"] == "explained"


def test_a_writer_and_an_admin_see_no_event_pages(browser: object, hospital: dict) -> None:
    writer = sign_in(browser, hospital, "writer")
    assert writer.locator("h1").inner_text() == "Forbidden"
    assert "may not read" in writer.locator("main").inner_text()
    admin = sign_in(browser, hospital, "admin")
    assert admin.url.endswith("/principals")
    for path in ("/", "/search?q=actor:n-3B-2", "/entries/10", f"/history?resource={PATIENT}"):
        answer = admin.goto(path)
        assert answer.status == 403, path
        shown = admin.locator("main").inner_text()
        assert "may not read" in shown
        assert NURSE not in shown
        assert "MRN" not in shown
    admin.goto("/principals")
    admin.get_by_label("Name").fill("ehr-2")
    admin.get_by_label("Role").select_option("writer")
    admin.get_by_role("button", name="Create").click()
    token = admin.locator("code.token").inner_text()
    assert token.startswith("tsk_")
    admin.get_by_role("button", name="Rotate the token of ehr-2").click()
    rotated = admin.locator("code.token").inner_text()
    assert rotated != token
    admin.get_by_role("button", name="Revoke ehr-2").click()
    assert "revoked" in admin.locator("tr", has_text="ehr-2").inner_text()
    look(admin, "principals")


def test_a_form_without_its_csrf_token_is_refused(browser: object, hospital: dict) -> None:
    page = sign_in(browser, hospital, "security")
    answer = page.request.post("/alerts/2", form={"step": "review", "note": "forged"})
    assert answer.status == 403
    assert "CSRF" in answer.text()
    forged = page.request.post("/alerts/2", form={"step": "review", "csrf": "x" * 43})
    assert forged.status == 403
    with hospital["service"].client(hospital["tokens"]["auditor"]) as api:
        assert api.get("/v1/alerts/2").json()["status"] == "open"  # nothing changed


def test_bad_input_gets_a_clear_page_not_a_trace(browser: object, hospital: dict) -> None:
    page = sign_in(browser, hospital, "auditor")
    for path, status, words in (
        ("/entries/99999999", 404, "no entry 99999999"),
        ("/entries/abc", 404, "is not an entry's index"),
        ("/search?q=actor:", 400, "at character"),
        ("/search?q=actr:x", 400, "actor"),
        ("/search?q=actor:a&cursor=WzEwLDIwXQ", 400, "cursor"),
        ("/search?q=actor:a&cursor=%25%25", 400, "cursor"),
        ("/alerts/abc", 404, "is not an alert's number"),
        ("/timeline?actor=a&since=yesterday-ish", 400, "since"),
    ):
        answer = page.goto(path)
        assert answer.status == status, path
        text = page.locator("main").inner_text()
        assert words in text, (path, text)
        assert "Traceback" not in page.content()
    look(page, "bad-query")


def test_an_idle_session_is_sent_back_to_sign_in(browser: object, tmp_path: Path) -> None:
    service = ServiceProcess.boot(tmp_path / "data", "--session-idle", "1")
    try:
        hospital = {"service": service, "tokens": {"auditor": service.principal("a", "auditor")}}
        page = sign_in(browser, hospital, "auditor")
        assert page.locator("h1").inner_text() == "Overview"
        time.sleep(1.5)
        page.goto("/search")
        assert "/signin" in page.url
        assert "expired" in page.locator("main").inner_text()
        look(page, "signin")
        page.get_by_label("API token").fill(hospital["tokens"]["auditor"])
        page.get_by_role("button", name="Sign in").click()
        assert page.url.endswith("/search")  # back where the viewer was going
    finally:
        service.stop()


def test_every_read_a_page_makes_is_recorded(browser: object, hospital: dict) -> None:
    page = sign_in(browser, hospital, "auditor")
    page.goto("/entries/3436")
    with hospital["service"].client(hospital["tokens"]["auditor"]) as api:
        found = api.get(
            "/v1/entries",
            params={"q": "action:audit.read resource:entry/3436", "order": "newest", "limit": 5},
        ).json()["entries"]
    services = {e["entry"]["event"]["source"]["service"] for e in found}
    assert "trailseal-web" in services


def test_the_keyboard_reaches_the_content_first(browser: object, hospital: dict) -> None:
    page = sign_in(browser, hospital, "auditor")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_the_pages_allow_only_their_own_scripts(hospital: dict) -> None:
    with hospital["service"].client() as anonymous:
        answer = anonymous.get("/signin")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert answer.headers["cache-control"] == "no-store"
    assert "HttpOnly" in answer.headers["set-cookie"]
    assert "SameSite=strict" in answer.headers["set-cookie"]


# -- the browser's check of a proof, against a naive RFC 9162 reference ----------------


def _root(leaves: list[bytes]) -> bytes:
    """MTH (RFC 9162 2.1.1), the naive recursive definition."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\0" + leaves[0]).digest()
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\1" + _root(leaves[:split]) + _root(leaves[split:])).digest()


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH (RFC 9162 2.1.3.1), the naive recursive definition."""
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*_path(index, leaves[:split]), _root(leaves[split:])]
    return [*_path(index - split, leaves[split:]), _root(leaves[:split])]


def _plus_signer() -> Signer:
    """A key whose verifier text holds '+' in its base64 (as about half of keys do)."""
    while True:
        signer = Signer.generate("test.example/log")
        if "+" in str(signer.verifier).split("+", 2)[2]:
            return signer


def _check_in_browser(page: object, data: dict) -> tuple[str, str]:
    """proof.js run on a page holding ``data``, served at an https address (WebCrypto
    exists in secure contexts only) by the browser's own request routing."""
    html = (
        '<!doctype html><meta charset="utf-8"><p id="proof-result"></p><ol id="proof-steps"></ol>'
        f'<script type="application/json" id="proof-data">{orjson.dumps(data).decode()}</script>'
        '<script src="/proof.js"></script>'
    )
    script = (ROOT / "src/trailseal/web/static/proof.js").read_text()
    page.route(  # type: ignore[attr-defined]
        "https://proof.test/**",
        lambda route: route.fulfill(
            body=script if route.request.url.endswith(".js") else html,
            content_type="text/javascript"
            if route.request.url.endswith(".js")
            else "text/html; charset=utf-8",
        ),
    )
    page.goto("https://proof.test/")  # type: ignore[attr-defined]
    page.unroute("https://proof.test/**")  # type: ignore[attr-defined]
    result = page.locator("#proof-result")  # type: ignore[attr-defined]
    result.locator("xpath=self::*[@data-verified]").wait_for()
    steps = page.locator("#proof-steps").inner_text()  # type: ignore[attr-defined]
    return result.get_attribute("data-verified"), steps + result.inner_text()


def test_the_browser_check_agrees_with_the_reference_at_every_position(browser: object) -> None:
    """Every index of trees of 1 to 9 leaves verifies; a changed leaf, proof hash, root,
    size or signature does not. The key's text holds '+', which must not split it."""
    signer = _plus_signer()
    page = browser.new_page()  # type: ignore[attr-defined]
    for size in range(1, 10):
        leaves = [f"entry {n} of {size}".encode() for n in range(size)]
        note = Checkpoint("test.example/log", size, _root(leaves)).sign(signer)
        for index in range(size):
            data = {
                "index": index,
                "size": size,
                "leaf_hash": hashlib.sha256(b"\0" + leaves[index]).hexdigest(),
                "proof": [node.hex() for node in _path(index, leaves)],
                "entry": base64.b64encode(leaves[index]).decode(),
                "checkpoint": note,
                "vkey": str(signer.verifier),
            }
            verdict, steps = _check_in_browser(page, data)
            assert verdict == "true", (size, index, steps)
    leaves = [f"entry {n}".encode() for n in range(7)]
    note = Checkpoint("test.example/log", 7, _root(leaves)).sign(signer)
    good = {
        "index": 5,
        "size": 7,
        "leaf_hash": hashlib.sha256(b"\0" + leaves[5]).hexdigest(),
        "proof": [node.hex() for node in _path(5, leaves)],
        "entry": base64.b64encode(leaves[5]).decode(),
        "checkpoint": note,
        "vkey": str(signer.verifier),
    }
    other = Signer.generate("test.example/log")
    for change in (
        {"entry": base64.b64encode(b"entry 6").decode()},
        {"proof": [("00" * 32), *good["proof"][1:]]},
        {"size": 8},
        {"index": 4},
        {"checkpoint": note.replace("\n7\n", "\n8\n")},
        {"checkpoint": Checkpoint("test.example/log", 7, _root(leaves)).sign(other)},
        {"vkey": str(other.verifier)},
    ):
        verdict, steps = _check_in_browser(page, good | change)
        assert verdict == "false", (change, steps)


# -- hostile input at every page, over real HTTP ----------------------------------------


_PAGES = st.sampled_from(
    [
        "/search?q={}",
        "/search?q=actor:a&cursor={}",
        "/search?q={}&count_by={}",
        "/entries/{}",
        "/history?resource={}",
        "/timeline?actor={}&since={}",
        "/alerts?status={}&severity={}",
        "/alerts/{}",
        "/?at={}",
        "/search?limit={}",
    ]
)


_VALUES = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)  # no lone surrogates


@given(page=_PAGES, values=st.lists(_VALUES, min_size=2, max_size=2))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_input_gets_a_page_that_names_the_problem(
    hospital: dict, page: str, values: list[str]
) -> None:
    """Whatever a page is given, it answers 200, or 4xx with a message: never a 500,
    never a trace."""
    if "fuzz" not in hospital:  # one session for every example
        hospital["fuzz"] = hospital["service"].signed_in(hospital["tokens"]["auditor"])
    client = hospital["fuzz"]
    path = page.format(*(quote(v, safe="") for v in values))
    answer = client.get(path)
    assert answer.status_code in (200, 307, 400, 403, 404), (path, answer.status_code)
    assert "Traceback" not in answer.text
    if answer.status_code == 307:  # /alerts/ is /alerts: the framework's own redirect
        assert answer.headers["location"].startswith(hospital["service"].url + "/")
    elif answer.status_code != 200:
        assert 'class="notice error"' in answer.text, path


def test_before_and_after_become_changes_field_by_field() -> None:
    found = changes({"ward": "3B", "bed": 4, "tags": ["a"]}, {"ward": "4A", "bed": 4, "note": "x"})
    assert [(c.path, c.kind) for c in found] == [
        ("ward", "changed"),
        ("bed", "same"),
        ("tags", "removed"),
        ("note", "added"),
    ]
    assert changes(None, {"a": {"b": 1}})[0].path == "a.b"
    assert changes(None, None) == []


def test_a_chart_draws_a_bar_a_point_with_its_value() -> None:
    svg = bars("Entries <by> day", [("10-01", 3), ("10-02", 0), ("10-03", 12)])
    assert svg.count("<rect") == 3
    assert "10-03: 12</title>" in svg
    assert "Entries &lt;by&gt; day" in svg  # escaped


def test_rotating_or_revoking_a_principal_ends_its_sessions(
    browser: object, hospital: dict
) -> None:
    service = hospital["service"]
    with service.client(service.admin) as admin:
        made = admin.post("/v1/principals", json={"name": "temp-auditor", "role": "auditor"}).json()
        page = sign_in(
            browser, {"service": service, "tokens": {"auditor": made["token"]}}, "auditor"
        )
        assert page.locator("h1").inner_text() == "Overview"
        assert admin.post(f"/v1/principals/{made['id']}/rotate").status_code == 200
        page.goto("/search")
        assert "/signin" in page.url  # the old token's session is over
        rotated = admin.get("/v1/principals").json()
        assert any(p["id"] == made["id"] for p in rotated["principals"])
