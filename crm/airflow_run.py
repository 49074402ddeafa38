"""`airflow dags test` and Airflow's record of the run it made, in one child process.

`crm run` on the embedded Airflow once started two processes per DAG run: `airflow dags
test`, then `python -m crm.airflow_record` to read what Airflow recorded. Each imports
Airflow; the second process cost 2.7 s per DAG run here (measured), four per `crm run`.
This module runs the command through Airflow's own parser and dispatch (what the `airflow`
executable does, so the run is exactly `airflow dags test`), then reads the record in the
same process and prints it as the last line of stdout after `RECORD_MARKER`.

    python -m crm.airflow_run DAG_ID LOGICAL_DATE CONF_JSON SINCE

The exit code is the command's; the record is printed whether the run succeeded or not.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

#: Prefix of the stdout line holding the run's record as JSON.
RECORD_MARKER = "CRM_AIRFLOW_RECORD "


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None or isinstance(exit_.code, int):
        return exit_.code or 0
    print(exit_.code, file=sys.stderr)  # what `airflow` would print: "DagRun failed"
    return 1


def main(argv: list[str]) -> int:
    dag_id, logical_date, conf, since = argv
    from airflow.__main__ import main as airflow_main

    from crm.airflow_record import read_record

    sys.argv = ["airflow", "dags", "test", dag_id, logical_date, "-c", conf]
    try:
        airflow_main()
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_)
    record = read_record(dag_id, since=datetime.fromisoformat(since))
    sys.stdout.flush()
    # on a line of its own, whatever Airflow printed last
    sys.stdout.write("\n" + RECORD_MARKER + json.dumps(record, default=str) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
