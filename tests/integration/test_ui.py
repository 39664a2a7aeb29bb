"""The status page in headless Chromium, against a service watching a simulated fleet."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentwatch.collector import embedded_dsn
from agentwatch.collector._fleet import Fleet
from agentwatch.collector._service import Service
from tests.support import local_settings

from .incident import serve

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DOCS = Path(__file__).parents[2] / "docs"  # refreshed only with UPDATE_DOCS_SCREENSHOTS=1
AGENTS = 6
RUNAWAY = 3
sync_api = pytest.importorskip("playwright.sync_api")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: a temporary directory, or docs/ when refreshing the README's."""
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        return DOCS
    return tmp_path_factory.mktemp("screenshots")


class Live:
    def __init__(self, service: Service, api: str, fleet: Fleet) -> None:
        self.service, self.api, self.fleet = service, api, fleet
        self.runaway = fleet.members[RUNAWAY].agent.instance_id

    def has(self, method: str, path: str) -> bool:
        spec = httpx.get(f"{self.api}/openapi.json").json()
        return method in spec["paths"].get(path, {})


@pytest.fixture(scope="module")
def ui_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui")


def beside(ui_dir: Path, data_dir: Path, **overrides: Any) -> Any:
    """Settings of a second service in this process: the embedded engine serves one path."""
    return local_settings(data_dir, clickhouse_dsn=embedded_dsn(ui_dir), **overrides)


@pytest.fixture(scope="module")
def live(ui_dir: Path, webhook_secret_module: str) -> Iterator[Live]:
    settings = local_settings(
        ui_dir,
        webhook_secret=webhook_secret_module,
        breaker_min_severity="warning",
        alerting={"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]},
    )
    with serve(settings) as (service, api, otlp):
        fleet = Fleet(
            AGENTS,
            endpoint=otlp,
            webhook_secret=webhook_secret_module,
            heartbeat_interval_s=0.5,
            runaway_index=RUNAWAY,
        )
        fleet.runaway.flood_calls = 40
        fleet.start()
        try:
            yield Live(service, api, fleet)
        finally:
            fleet.shutdown()


@pytest.fixture(scope="module")
def webhook_secret_module() -> str:
    import base64

    return "whsec_" + base64.b64encode(b"agentwatch-ui-test-secret-0123").decode()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors  # no script error on any page


def test_the_fleet_page_lists_every_agent_and_updates_live(
    live: Live, page: Any, shots: Path
) -> None:
    page.goto(f"{live.api}/ui")
    rows = page.locator("#fleet-body tr")
    sync_api.expect(rows).to_have_count(AGENTS, timeout=20_000)
    first = page.locator("#fleet").get_attribute("data-generated")
    sync_api.expect(page.locator("#fleet")).not_to_have_attribute(
        "data-generated", first or "", timeout=10_000
    )
    sync_api.expect(page.locator("#fleet-body .badge.alive").first).to_be_visible()
    # The runaway loops: its breaker opens and the page shows it without a reload.
    live.fleet.runaway.go.set()
    row = page.locator(f'#fleet-body tr[data-agent="{live.runaway}"] td.breaker')
    sync_api.expect(row).to_contain_text("open", timeout=20_000)
    sync_api.expect(page.locator("#recent-body tr").first).to_contain_text(live.runaway)
    page.screenshot(path=str(shots / "ui.png"), full_page=True)


def test_the_agent_page_draws_rate_tools_and_anomalies(live: Live, page: Any, shots: Path) -> None:
    live.fleet.runaway.go.set()
    page.goto(f"{live.api}/ui")
    page.locator(f'#fleet-body a:text-is("{live.runaway}")').click()
    page.wait_for_url(f"**/ui/agents/{live.runaway}")
    sync_api.expect(page.locator("#rate-svg rect").first).to_be_attached(timeout=10_000)
    sync_api.expect(page.locator("#tools-svg text").first).to_be_attached()
    sync_api.expect(page.locator("#anomalies-body tr").first).to_contain_text(
        "loop", timeout=20_000
    )
    sync_api.expect(page.locator("#breaker")).to_contain_text("open")
    page.screenshot(path=str(shots / "ui-agent.png"), full_page=True)


def test_breaker_buttons_force_open_and_close(live: Live, page: Any) -> None:
    path = "/api/v1/breakers/{agent}/force-open"
    if not live.has("post", path):
        pytest.skip(f"the service has no POST {path} yet")
    agent = live.fleet.members[0].agent.instance_id
    page.goto(f"{live.api}/ui/agents/{agent}")
    page.fill("#reason", "maintenance window")
    page.click("#force-open")
    sync_api.expect(page.locator("#action-status")).to_have_text("force open: done")
    sync_api.expect(page.locator("#breaker")).to_have_attribute("data-state", "forced_open")
    control = httpx.get(f"{live.api}/api/v1/agents/{agent}/control").json()
    assert control["breaker"] == "forced_open"
    page.click("#close-breaker")
    sync_api.expect(page.locator("#action-status")).to_have_text("close: done")
    sync_api.expect(page.locator("#breaker")).to_have_attribute("data-state", "closed")


def test_silence_buttons_create_and_expire(live: Live, page: Any) -> None:
    if not live.has("post", "/api/v1/silences"):
        pytest.skip("the service has no POST /api/v1/silences yet")
    agent = live.fleet.members[1].agent.instance_id
    page.goto(f"{live.api}/ui/agents/{agent}")
    page.fill("#silence-comment", "deploying")
    page.click("#create-silence")
    sync_api.expect(page.locator("#action-status")).to_have_text("silence: done")
    item = page.locator("#silences li[data-id]")
    sync_api.expect(item).to_have_count(1)
    sync_api.expect(item).to_contain_text("deploying")
    page.click("#silences button.expire-silence")
    sync_api.expect(page.locator("#action-status")).to_have_text("expire: done")
    sync_api.expect(item).to_have_count(0)


def test_the_page_carries_no_data_without_the_token(ui_dir: Path, data_dir: Path) -> None:
    with serve(beside(ui_dir, data_dir, api_token="ui-t")) as (service, api, _):
        service.registry.observe("secret-agent-1", "cohort", 1, heartbeat=True, control_url="")
        anonymous = httpx.get(f"{api}/ui")
        assert anonymous.status_code == 200 and "secret-agent-1" not in anonymous.text
        assert 'id="token-form"' in anonymous.text
        assert "frame-ancestors 'none'" in anonymous.headers["content-security-policy"]
        authorized = httpx.get(f"{api}/ui", headers={"authorization": "Bearer ui-t"})
        assert "secret-agent-1" in authorized.text
        assert httpx.get(f"{api}/api/v1/fleet").status_code == 401


def test_without_a_token_only_loopback_hosts_and_origins_are_answered(
    ui_dir: Path, data_dir: Path
) -> None:
    with serve(beside(ui_dir, data_dir)) as (_, api, _):
        assert httpx.get(f"{api}/ui").status_code == 200
        assert httpx.get(f"{api}/ui", headers={"host": "evil.example"}).status_code == 403
        forged = {"origin": "https://evil.example"}
        sql = {"sql": "SELECT 1"}
        assert httpx.post(f"{api}/api/v1/query", json=sql, headers=forged).status_code == 403
        local = {"origin": api}
        assert httpx.post(f"{api}/api/v1/query", json=sql, headers=local).status_code == 200
