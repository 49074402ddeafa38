"""A run that fails alerts the people on call: a real SMTP server (aiosmtpd) and a webhook
receiver on 127.0.0.1 get the DAG, the task, the as-of date, the error and the log link
from a real Airflow run of the pipeline, once per failed task."""

from __future__ import annotations

import email
import json
import socket
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import run_crm

pytestmark = pytest.mark.integration


class Inbox:
    """aiosmtpd handler: keeps every message it is sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks it can connect)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def webhook():
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/crm", received
    finally:
        server.shutdown()


def test_a_failed_run_mails_and_posts_the_dag_task_date_and_log_link(
    tmp_path, smtp_server, webhook
):
    port, inbox = smtp_server
    url, posted = webhook
    home = tmp_path / "home"
    customers = home / "landing" / "customers"
    customers.mkdir(parents=True)
    (customers / "customers.csv").write_text("full_name,email\nAda,ada@example.com\n")
    proc = run_crm(
        "run", "--as-of", "2021-03-31", "--no-ml", home=home, check=False,
        env={
            "CRM_ALERT_EMAIL": "oncall@example.com, data@example.com",
            "CRM_ALERT_WEBHOOK_URL": url,
            "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true",
        },
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]

    # one mail: the failed ingest task (the failure handler that ends the run sends none)
    assert len(inbox.messages) == 1, [m[1][:300] for m in inbox.messages]
    recipients, content = inbox.messages[0]
    assert sorted(recipients) == ["data@example.com", "oncall@example.com"]
    mail = email.message_from_bytes(content, policy=policy.default)
    assert mail["Subject"] == (
        "[crm-analytics] crm_pipeline failed for 2021-03-31: task ingest_customers"
    )
    assert mail["From"] == "crm-analytics@localhost"
    body = mail.get_body(("html", "plain")).get_content()
    assert "required column(s) customer_id missing" in body
    assert "dag_id=crm_pipeline" in body or "crm_pipeline" in body
    assert "task_id=ingest_customers" in body or "/ingest_customers" in body

    assert len(posted) == 1
    path, alert = posted[0]
    assert path == "/hooks/crm"
    assert (alert["dag_id"], alert["task_id"], alert["as_of"]) == (
        "crm_pipeline",
        "ingest_customers",
        "2021-03-31",
    )
    assert alert["log_url"].startswith("http") and "ingest_customers" in alert["log_url"]
    assert alert["log_url"] in body
    assert "customer_id missing" in alert["text"]
