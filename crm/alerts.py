"""Tell people when a run fails: an Airflow notifier every task of every DAG carries.

When a task fails for good (after its retries), `RunFailureNotifier` sends what an on-call
engineer needs first (the DAG, the task, the as-of date, the error, the log link) by
e-mail through the SMTP provider (the Airflow connection CRM_ALERT_SMTP_CONN_ID, default
`smtp_default`) to CRM_ALERT_EMAIL, and as JSON to CRM_ALERT_WEBHOOK_URL (a chat tool's
incoming webhook). Unset, each channel is off. Settings are read when a task fails, so
changing them needs no DAG change; a channel that cannot be reached is logged, never
raised (the task already failed; an alert must not hide why).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, timedelta

from airflow.sdk import BaseNotifier

from crm.airflow_record import is_failure_handler

log = logging.getLogger(__name__)


def failure_message(context) -> dict:
    """What the alert says, from the failed task's context."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    params = context.get("params") or {}
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run else {}
    as_of = params.get("as_of") or conf.get("as_of")
    logical = getattr(dag_run, "logical_date", None) if dag_run else None
    if not as_of and logical is not None:
        as_of = (logical.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    error = context.get("exception")
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "as_of": as_of or "unknown",
        "try_number": ti.try_number,
        "error": str(error).strip().splitlines()[0][:500] if error else "",
        "log_url": ti.log_url,
    }


def _text(m: dict) -> str:
    return (
        f"crm-analytics: task {m['task_id']} of {m['dag_id']} failed for as-of date "
        f"{m['as_of']} (run {m['run_id']}, try {m['try_number']}).\n"
        f"Error: {m['error'] or 'see the log'}\nLog: {m['log_url']}\n"
    )


class RunFailureNotifier(BaseNotifier):
    """E-mail and webhook alert for a task that failed for good."""

    def notify(self, context) -> None:
        if is_failure_handler(getattr(context.get("task"), "trigger_rule", "all_success")):
            return  # record_failure fails on purpose after the failure already reported
        from crm.settings import get_settings

        settings = get_settings()
        message = failure_message(context)
        if settings.alert_email:
            self._mail(settings, message)
        if settings.alert_webhook_url:
            self._post(settings.alert_webhook_url, message)

    @staticmethod
    def _mail(settings, message: dict) -> None:
        from html import escape

        from airflow.providers.smtp.hooks.smtp import SmtpHook

        subject = (
            f"[crm-analytics] {message['dag_id']} failed for {message['as_of']}: "
            f"task {message['task_id']}"
        )
        rows = "".join(
            f"<tr><th align='left'>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
            for k, v in message.items()
            if k != "log_url"
        )
        html = (
            f"<p>{escape(_text(message)).replace(chr(10), '<br>')}</p><table>{rows}</table>"
            f'<p><a href="{escape(message["log_url"])}">Open the log</a></p>'
        )
        try:
            with SmtpHook(smtp_conn_id=settings.alert_smtp_conn_id) as smtp:
                smtp.send_email_smtp(
                    smtp_conn_id=settings.alert_smtp_conn_id,
                    from_email=settings.alert_from,
                    to=[a.strip() for a in settings.alert_email.split(",") if a.strip()],
                    subject=subject,
                    html_content=html,
                )
        except Exception:
            log.exception("could not send the failure e-mail to %s", settings.alert_email)

    @staticmethod
    def _post(url: str, message: dict) -> None:
        import urllib.request

        body = json.dumps({"text": _text(message), **message}).encode()
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except Exception:
            log.exception("could not post the failure alert to the webhook")
