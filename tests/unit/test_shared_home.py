"""The scheduler plugin reads each module's shared home from its marker."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

from tests.conftest import REPO
from tests.shared_home import declared_group


def test_the_modules_of_a_shared_home_declare_it_and_others_do_not():
    integration = REPO / "tests" / "integration"
    assert declared_group(integration / "test_activation.py") == "demo"
    assert declared_group(integration / "test_target_models.py") == "demo"
    assert declared_group(integration / "test_marts.py") == "pipeline"
    assert declared_group(integration / "test_crm_source.py") == "crm_source"
    assert declared_group(integration / "test_deployment.py") is None


def test_the_private_hook_the_plugin_overrides_still_exists():
    assert hasattr(LoadScopeScheduling, "_split_scope")
