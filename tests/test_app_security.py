"""Who the live app answers (issue 14): the Host names, the WebSocket origins, the token, the security headers.

Proved with FastAPI's test client: a request whose Host is not one of the app's names is refused on every route
(400, one line) and its own names are answered; a WebSocket from a foreign Origin, without an Origin and without
the token, or with a wrong token is refused in the handshake (403, one line) and counts no session while an
accepted one goes on, and the own origins and an --allow-origin one are accepted; beyond loopback the page, the
API and the WebSocket need the token (query or the HttpOnly SameSite=Strict cookie the first page load sets);
the page comes with the Content-Security-Policy, nosniff and no-referrer headers and has nothing inline that the
policy would block. Through the CLI (uvicorn.run replaced, the app it builds kept): the options reach the app,
bad ones are one line, --no-token beyond loopback warns. As a subprocess, `neurospike app --host 0.0.0.0` prints
a URL with its token; a request without it is refused, with it answered, and in chromium the cookie lets the
page's own WebSocket through (every connection goes to 127.0.0.1).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.testclient import WebSocketDenialResponse  # noqa: E402

from conftest import free_port  # noqa: E402
from neurospike import cli  # noqa: E402
from neurospike.app import server  # noqa: E402

PORT = 8050
OWN_ORIGINS = [f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}", f"http://[::1]:{PORT}"]
ROUTES = ["/", "/api/health", "/api/models", "/static/app.js", "/vendor/plotly.min.js"]
TOKEN = "s3cret-Token_1"


def client_for(**options) -> TestClient:
    """A test client of ``create_app(PORT, **options)`` whose requests say Host 127.0.0.1:PORT."""
    return TestClient(server.create_app(PORT, **options), base_url=f"http://127.0.0.1:{PORT}")


def connect(client: TestClient, host: str = f"127.0.0.1:{PORT}", query: str = "", **headers):
    """Open /ws with these headers (the test client's own Host is replaced by ``host``)."""
    return client.websocket_connect(f"ws://{host}/ws{query}", headers=headers)


def refused(client: TestClient, status: int, host: str = f"127.0.0.1:{PORT}", query: str = "", **headers) -> str:
    """The one-line body of a refused WebSocket handshake (asserted refused with ``status``)."""
    with pytest.raises(WebSocketDenialResponse) as denial:
        with connect(client, host, query, **headers):
            pass
    assert denial.value.status_code == status
    return one_line(denial.value.text)


def one_line(text: str) -> str:
    assert text.strip() and "\n" not in text.strip(), text
    return text.strip()


def sessions(client: TestClient) -> int:
    return client.get("/api/health").json()["sessions"]


def accepted(ws) -> dict:
    config = ws.receive_json()
    assert config["type"] == "config" and config["model"] == "izhikevich"
    return config


# HTTP: the Host header

@pytest.mark.parametrize("route", ROUTES)
def test_a_foreign_host_is_refused_on_every_route_in_one_line(route):
    client = client_for()
    for host in (f"attacker.com:{PORT}", "attacker.com", f"127.0.0.1.attacker.com:{PORT}", "0.0.0.0", "[::2]"):
        answer = client.get(route, headers={"host": host})
        assert answer.status_code == 400, (route, host)
        one_line(answer.text)
    for host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LOCALHOST:{PORT}", f"[::1]:{PORT}", "localhost"):
        assert client.get(route, headers={"host": host}).status_code == 200, (route, host)


def test_the_given_host_and_allowed_names_are_answered_and_nothing_else():
    client = client_for(host="192.0.2.7", allow_hosts=["mybox.lan", "fe80::1"])
    for host in (f"192.0.2.7:{PORT}", f"mybox.lan:{PORT}", f"[fe80::1]:{PORT}", f"localhost:{PORT}"):
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host
    for host in (f"192.0.2.8:{PORT}", f"other.lan:{PORT}", f"box.lan:{PORT}", f"[fe80::2]:{PORT}"):
        assert client.get("/api/health", headers={"host": host}).status_code == 400, host


def test_a_websocket_with_a_foreign_host_is_refused_even_from_an_own_origin():
    refused(client_for(), 400, host=f"attacker.com:{PORT}", origin=f"http://attacker.com:{PORT}")
    refused(client_for(), 400, host=f"attacker.com:{PORT}", origin=OWN_ORIGINS[0])


# WebSocket: the Origin header and the token

def test_foreign_missing_and_wrong_credentials_are_refused_and_count_no_session():
    client = client_for(token=TOKEN)
    with connect(client, origin=OWN_ORIGINS[0]) as open_session:  # one accepted session, going on throughout
        accepted(open_session)
        for origin in ("http://evil.example", f"http://evil.example:{PORT}", "null", f"https://127.0.0.1:{PORT}",
                       "http://127.0.0.1:9999", f"http://127.0.0.2:{PORT}", "http://localhost"):
            assert origin in refused(client, 403, origin=origin), origin
        assert "needs the app's token" in refused(client, 403)  # no Origin, no token
        assert "needs the app's token" in refused(client, 403, query="?token=wrong")
        assert "needs the app's token" in refused(client, 403, query="?token=%C3%A9")  # not ASCII
        refused(client, 403, query=f"?token={TOKEN}", origin="http://evil.example")  # the token is no passport
        assert sessions(client) == 1
        open_session.send_text(json.dumps({"type": "pause"}))
        assert open_session.receive_json() == {"type": "ack", "of": "pause", "revision": 0}
    assert sessions(client) == 0


def test_without_a_token_a_client_without_origin_is_refused():
    client = client_for()
    assert "needs the app's token" in refused(client, 403)
    assert "needs the app's token" in refused(client, 403, query="?token=anything")
    assert sessions(client) == 0


@pytest.mark.parametrize("origin", OWN_ORIGINS + ["HTTP://LOCALHOST:8050"])
def test_the_own_origins_are_accepted(origin):
    client = client_for()
    with connect(client, host=origin.split("//")[1].lower(), origin=origin) as ws:
        accepted(ws)
        assert sessions(client) == 1


def test_an_allowed_origin_and_a_script_with_the_token_are_accepted():
    client = client_for(allow_origins=["https://proxy.example:8443"], token=TOKEN)
    with connect(client, origin="https://proxy.example:8443") as ws:
        accepted(ws)
    with connect(client, query=f"?token={TOKEN}") as ws:  # a script: no Origin, the token in the URL
        accepted(ws)
    refused(client, 403, origin="https://proxy.example:9443")


def test_port_80_origins_leave_the_port_out_as_browsers_do():
    client = TestClient(server.create_app(80), base_url="http://localhost")
    with connect(client, host="localhost", origin="http://localhost") as ws:
        accepted(ws)
    refused(client, 403, host="localhost", origin="http://localhost:8050")


# Beyond loopback: the token

def test_beyond_loopback_every_route_and_the_websocket_need_the_token():
    client = client_for(host="0.0.0.0", token=TOKEN)
    for route in ROUTES:
        answer = client.get(route)
        assert answer.status_code == 403 and "needs its token" in one_line(answer.text), route
        answer = client.get(route, params={"token": "wrong"})
        assert answer.status_code == 403 and "wrong token" in one_line(answer.text), route
    refused(client, 403, origin=OWN_ORIGINS[0])
    refused(client, 403, origin=OWN_ORIGINS[0], query="?token=wrong")
    client.cookies.set(server.token_cookie(PORT), "wrong")
    refused(client, 403, origin=OWN_ORIGINS[0])
    assert client.get("/api/health").status_code == 403
    client.cookies.clear()

    page = client.get("/", params={"token": TOKEN})  # the first page load sets the cookie
    assert page.status_code == 200 and 'data-testid="trace-v"' in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"neurospike-token-{PORT}={TOKEN};")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert client.cookies.get(server.token_cookie(PORT)) == TOKEN
    for route in ROUTES:  # the page's own requests carry the cookie, not the token
        assert client.get(route).status_code == 200, route
    with connect(client, origin=OWN_ORIGINS[1]) as ws:
        accepted(ws)
        assert sessions(client) == 1


def test_on_loopback_the_token_is_optional_but_accepted():
    client = client_for(token=TOKEN)
    assert client.get("/api/health").status_code == 200
    answer = client.get("/api/health", params={"token": TOKEN})
    assert answer.status_code == 200 and "HttpOnly" in answer.headers["set-cookie"]
    assert "set-cookie" not in client_for(token=TOKEN).get("/", params={"token": "wrong"}).headers


# The page's headers and markup

class PageAudit(HTMLParser):
    """What in a page a Content-Security-Policy without 'unsafe-inline' script would block: inline scripts,
    event-handler attributes, javascript: URLs; and the origins of the scripts it loads."""

    def __init__(self):
        super().__init__()
        self.blocked, self.script_sources, self.in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.blocked += [f"{tag} {name}" for name in attributes if name.startswith("on")]
        self.blocked += [f"{tag} {name}" for name, value in attributes.items()
                         if (value or "").strip().lower().startswith("javascript:")]
        if tag == "script":
            self.in_script = "src" not in attributes
            if "src" in attributes:
                self.script_sources.append(attributes["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.blocked.append("inline script")


def test_the_page_has_the_security_headers_and_nothing_inline_they_block():
    page = client_for().get("/")
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    policy = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split(";")}
    assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    sources = [source for directive in policy.values() for source in directive]
    assert not [s for s in sources if "://" in s or s in ("*", "http:", "https:")], sources  # no remote origin
    audit = PageAudit()
    audit.feed(page.text)
    assert audit.blocked == [] and audit.script_sources  # every script is a file of the app's own origin
    assert all(src.startswith("/") and not src.startswith("//") for src in audit.script_sources)
    assert "nosniff" == client_for().get("/static/app.js").headers["x-content-type-options"]


# The CLI

@pytest.fixture
def launched(monkeypatch, tmp_path):
    """Run ``neurospike app ARGS`` in-process with uvicorn.run replaced: (exit code, stdout, stderr, the app it
    would serve, uvicorn's keywords)."""
    import uvicorn

    monkeypatch.setenv("NEUROSPIKE_CACHE", str(tmp_path))
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, options=options))

    def launch(capsys, *args):
        code = cli.main(["app", *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err, served.get("app"), served.get("options")

    return launch


def test_the_cli_prints_one_url_with_the_token_and_the_options_reach_the_app(launched, capsys):
    port = free_port()
    code, out, err, app, options = launched(capsys, "--port", port, "--host", "0.0.0.0", "--allow-host", "Box.LAN",
                                            "--allow-origin", "https://proxy.example:8443/", "--token", TOKEN)
    assert code == 0 and err == "" and options == {"host": "0.0.0.0", "port": port, "log_level": "warning",
                                                   "ws_max_size": 16 * server.MAX_MESSAGE_BYTES,
                                                   "ws_per_message_deflate": False}
    assert out.count("\n") == 1 and f":{port}/?token={TOKEN} " in out
    client = TestClient(app, base_url=f"http://box.lan:{port}")
    assert client.get("/api/health").status_code == 403
    assert client.get("/api/health", params={"token": TOKEN}).status_code == 200
    name = re.search(r"http://([^/]+):\d+/", out).group(1)  # the machine's name: the app answers to it
    assert client.get("/api/health", headers={"host": f"{name}:{port}"}).status_code == 200
    assert client.get("/api/health", headers={"host": f"attacker.com:{port}"}).status_code == 400
    with connect(client, host=f"box.lan:{port}", origin="https://proxy.example:8443") as ws:
        accepted(ws)


def test_the_cli_generates_a_token_and_no_token_beyond_loopback_warns_in_one_line(launched, capsys):
    code, out, err, _, _ = launched(capsys, "--port", free_port())
    token = re.search(r"http://localhost:\d+/\?token=([\w-]+) ", out).group(1)
    assert code == 0 and err == "" and len(token) >= 43  # secrets.token_urlsafe(32): 256 random bits
    assert token != re.search(r"\?token=([\w-]+)", launched(capsys, "--port", free_port())[1]).group(1)
    code, out, err, app, _ = launched(capsys, "--port", free_port(), "--host", "0.0.0.0", "--no-token")
    assert code == 0 and "token" not in out and out.count("\n") == 1
    assert err.count("\n") == 1 and err.startswith("neurospike: warning: --no-token on 0.0.0.0")
    assert TestClient(app, base_url="http://127.0.0.1").get("/api/health").status_code == 200
    code, out, err, _, _ = launched(capsys, "--port", free_port(), "--no-token")
    assert code == 0 and err == "" and "token" not in out


@pytest.mark.parametrize("args, named", [
    (["--allow-host", "*"], "--allow-host '*'"),
    (["--allow-host", "*.example.org"], "no scheme, port or wildcard"),
    (["--allow-host", "http://box.lan"], "--allow-host 'http://box.lan'"),
    (["--allow-host", "box.lan:8050"], "--allow-host 'box.lan:8050'"),
    (["--allow-host", ""], "--allow-host ''"),
    (["--allow-origin", "evil.example"], "--allow-origin 'evil.example'"),
    (["--allow-origin", "https://proxy.example/app"], "no path"),
    (["--allow-origin", "ftp://proxy.example"], "SCHEME://HOST[:PORT]"),
    (["--allow-origin", "http://proxy.example:99999"], "--allow-origin"),
    (["--token", "a b"], "--token 'a b'"),
    (["--token", ""], "--token ''"),
    (["--token", "abc", "--no-token"], "--token and --no-token"),
])
def test_the_cli_refuses_bad_access_options_in_one_line(launched, capsys, args, named):
    code, out, err, app, _ = launched(capsys, "--port", free_port(), *args)
    assert code == 2 and out == "" and app is None
    assert err.count("\n") == 1 and err.startswith("neurospike: error: ") and named in err


# `neurospike app --host 0.0.0.0` as a user starts it

@pytest.fixture(scope="module")
def exposed():
    """`neurospike app --host 0.0.0.0` on a free port: (port, token from the printed URL). Connections go to
    127.0.0.1 only."""
    port = free_port()
    script = shutil.which("neurospike", path=str(Path(sys.executable).parent)) or "neurospike"
    process = subprocess.Popen([script, "app", "--host", "0.0.0.0", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # the tests' jax disk cache (tests/conftest.py)
    line = process.stdout.readline()
    match = re.search(r"http://\S+:(\d+)/\?token=([\w-]+)\s", line)
    assert match and int(match.group(1)) == port, (line, process.stderr.read() if process.poll() is not None else "")
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health?token={match.group(2)}", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"neurospike app exited: {process.stderr.read()}")
            time.sleep(0.1)
    yield port, match.group(2)
    assert process.poll() is None, "the server died during the tests"
    process.terminate()
    process.wait(timeout=10)


def test_exposed_app_refuses_requests_without_its_token(exposed):
    port, token = exposed
    for query in ("", "?token=wrong"):
        with pytest.raises(urllib.error.HTTPError) as refusal:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health{query}", timeout=5)
        assert refusal.value.code == 403
        one_line(refusal.value.read().decode())
    answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health?token={token}", timeout=5)
    assert json.loads(answer.read())["status"] == "ok"
    assert "HttpOnly" in answer.headers["set-cookie"]


def test_exposed_app_refuses_a_foreign_origin_in_the_handshake_and_takes_its_own(exposed):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect as ws_connect

    port, token = exposed
    for origin, query in (("http://evil.example", f"?token={token}"), (f"http://127.0.0.1:{port}", "")):
        with pytest.raises(InvalidStatus) as refusal:
            ws_connect(f"ws://127.0.0.1:{port}/ws{query}", origin=origin, open_timeout=10)
        assert refusal.value.response.status_code == 403
        one_line(refusal.value.response.body.decode())
    with ws_connect(f"ws://127.0.0.1:{port}/ws?token={token}", origin=f"http://127.0.0.1:{port}",
                    open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=20))["type"] == "config"


@pytest.mark.slow  # chromium
def test_exposed_app_in_chromium_the_cookie_lets_the_pages_websocket_through(exposed, browser):
    port, token = exposed
    context = browser.new_context()
    try:
        assert context.new_page().goto(f"http://127.0.0.1:{port}/").status == 403  # no token, no page
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        assert page.goto(f"http://127.0.0.1:{port}/?token={token}").status == 200
        # app.js opens /ws without a token: only the cookie the page load set can let it through
        page.wait_for_function("() => window.neurospike && window.neurospike.config && window.neurospike.connected")
        assert page.evaluate("window.neurospike.config.model") == "izhikevich"
        cookie, = [c for c in context.cookies() if c["name"] == f"neurospike-token-{port}"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] == token
        assert page.evaluate("document.cookie") == ""  # HttpOnly: the page's scripts cannot read it
        assert not problems, problems
    finally:
        context.close()
