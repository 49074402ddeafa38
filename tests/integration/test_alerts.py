"""A run that fails alerts the people on call: a real SMTP server (aiosmtpd) and a webhook
receiver on 127.0.0.1 get the DAG, the task, the as-of date, the error and the log link
from a real Airflow run of the pipeline, once per failed task. The failure is a landing
file without a required column, which stops the run (in the shared pipeline home)."""

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
from tests.conftest import warehouse_query as query
from tests.integration.conftest import AS_OF, copy_home
from tests.integration.test_pipeline import scalar

pytestmark = [pytest.mark.integration, pytest.mark.shared_home("pipeline")]


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


def test_an_unreadable_file_stops_the_run_and_alerts_the_people_on_call(
    pipeline, tmp_path, smtp_server, webhook
):
    """A file without a required column: the run stops naming the file and the problem,
    loads nothing of it, and mails and posts the DAG, task, date, error and log link once
    (one failing run for both: each run through Airflow costs a minute)."""
    port, inbox = smtp_server
    url, posted = webhook
    home = copy_home(pipeline, tmp_path)
    raw_before = scalar(home, "SELECT count(*) FROM raw.transactions")
    bad = home / "landing" / "transactions" / "late_export.csv"
    bad.write_text("transaction_id,customer_id,occurred_at\nX1,C0000001,2026-01-01\n")
    proc = run_crm(
        "run", "--as-of", AS_OF.isoformat(), "--no-ml", home=home, check=False,
        env={
            "CRM_ALERT_EMAIL": "oncall@example.com, data@example.com",
            "CRM_ALERT_WEBHOOK_URL": url,
            "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true",
        },
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]  # bad input
    assert "late_export.csv: required column(s) amount missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ingest_transactions" in proc.stderr
    assert scalar(home, "SELECT count(*) FROM raw.transactions") == raw_before
    assert query(home, "SELECT status FROM audit.pipeline_runs ORDER BY started_at") == [
        ("success",),
        ("failed",),
    ]

    # one mail: the failed ingest task (the failure handler that ends the run sends none)
    assert len(inbox.messages) == 1, [m[1][:300] for m in inbox.messages]
    recipients, content = inbox.messages[0]
    assert sorted(recipients) == ["data@example.com", "oncall@example.com"]
    mail = email.message_from_bytes(content, policy=policy.default)
    assert mail["Subject"] == (
        f"[crm-analytics] crm_pipeline failed for {AS_OF}: task ingest_transactions"
    )
    assert mail["From"] == "crm-analytics@localhost"
    body = mail.get_body(("html", "plain")).get_content()
    assert "required column(s) amount missing" in body
    assert "dag_id=crm_pipeline" in body or "crm_pipeline" in body
    assert "task_id=ingest_transactions" in body or "/ingest_transactions" in body

    assert len(posted) == 1
    path, alert = posted[0]
    assert path == "/hooks/crm"
    assert (alert["dag_id"], alert["task_id"], alert["as_of"]) == (
        "crm_pipeline",
        "ingest_transactions",
        AS_OF.isoformat(),
    )
    assert alert["log_url"].startswith("http") and "ingest_transactions" in alert["log_url"]
    assert alert["log_url"] in body
    assert "amount missing" in alert["text"]
