"""The dbt models read downwards only, checked on dbt's own graph (the manifest of `dbt
parse`): staging reads sources, intermediate reads staging and intermediate (never a
mart), marts read the layers below them, and the target-customer features and the
audience inputs read any layer below theirs and are read by no mart."""

from __future__ import annotations

import json
import subprocess
from datetime import date

from crm.dbt import dbt_command
from crm.settings import get_settings

#: A model may read models of its own layer or a lower one.
LAYERS = {"staging": 0, "intermediate": 1, "marts": 2, "features": 3, "audiences": 3}


def layering_violations(manifest: dict) -> list[str]:
    """`model -> model` edges that read upwards, e.g. an intermediate model reading a mart."""
    nodes = manifest["nodes"]

    def layer(unique_id: str) -> str:
        return nodes[unique_id]["fqn"][1]

    found = []
    for unique_id, node in nodes.items():
        if node["resource_type"] != "model":
            continue
        for parent in node["depends_on"]["nodes"]:
            if parent.startswith("model.") and LAYERS[layer(parent)] > LAYERS[layer(unique_id)]:
                found.append(
                    f"{node['name']} ({layer(unique_id)}) reads "
                    f"{nodes[parent]['name']} ({layer(parent)})"
                )
    return found


def _model(name: str, layer: str, parents: list[str]) -> dict:
    return {
        "name": name,
        "fqn": ["crm_analytics", layer, name],
        "resource_type": "model",
        "depends_on": {"nodes": [f"model.crm_analytics.{p}" for p in parents]},
    }


def test_an_intermediate_model_reading_a_mart_is_caught():
    nodes = {
        "model.crm_analytics.stg_a": _model("stg_a", "staging", []),
        "model.crm_analytics.fct_a": _model("fct_a", "marts", ["stg_a"]),
        "model.crm_analytics.int_a": _model("int_a", "intermediate", ["stg_a", "fct_a"]),
    }
    assert layering_violations({"nodes": nodes}) == ["int_a (intermediate) reads fct_a (marts)"]


def test_the_project_reads_downwards_only(crm_home, tmp_path):
    settings = get_settings()
    command = dbt_command(["parse", "--no-partial-parse"], date(2026, 1, 1), settings)
    proc = subprocess.run(
        [*command, "--target-path", str(tmp_path / "target")],
        cwd=settings.dbt_project_dir,
        env=settings.child_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    layers = {n["fqn"][1] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert layers == set(LAYERS)
    assert layering_violations(manifest) == []
