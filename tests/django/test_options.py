"""``OPTIONS``: checked by key, reported by Django's system checks, raised at first use."""

from __future__ import annotations

import math
import re

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from background_core import usable_cpus
from django_background import BackgroundBackend
from tests.django import tasks
from tests.django.conftest import api, backend_with, tasks_setting

WHERE = "TASKS['default']['OPTIONS']"


def problems(**options: object) -> list[str]:
    backend = BackgroundBackend("default", {"OPTIONS": options})
    return [message.msg for message in backend.check()]


def test_the_defaults_are_a_web_app_s() -> None:
    with backend_with() as backend:
        pool = backend.pool
        assert pool.name == "django"
        assert pool.workers == usable_cpus()
        assert pool.drain_timeout == 25.0
        assert pool.stats().queued == 0
    assert problems() == []


def test_options_reach_the_pool() -> None:
    with backend_with(workers=3, max_queue=5, drain_timeout=math.inf, results=0) as backend:
        assert backend.pool.workers == 3
        assert backend.pool.drain_timeout == math.inf


def test_another_alias_names_its_pool_after_it() -> None:
    with override_settings(TASKS={**tasks_setting(), **tasks_setting("email", workers=1)}):
        assert api.task_backends["email"].pool.name == "django.email"
        assert api.task_backends["email"].pool is not api.task_backends["default"].pool


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": "8"}, f"{WHERE}['workers'] must be a positive int, got str"),
        ({"workers": 0}, f"{WHERE}['workers'] must be at least 1, got 0"),
        ({"max_queue": -1}, f"{WHERE}['max_queue'] must be at least 1, got -1"),
        ({"on_full": "wait"}, f"{WHERE}['on_full'] must be one of 'block', 'raise'"),
        ({"drain_timeout": "25"}, f"{WHERE}['drain_timeout'] must be a number of seconds"),
        ({"block_timeout": -1}, f"{WHERE}['block_timeout'] must be >= 0 seconds"),
        ({"eager": 1}, f"{WHERE}['eager'] must be True or False, got int"),
        ({"results": -5}, f"{WHERE}['results'] must be an int >= 0 (the results held), got -5"),
        ({"worker": 2}, f"{WHERE} has an unknown key 'worker': did you mean 'workers'?"),
        ({"colour": 2}, f"{WHERE} has an unknown key 'colour': The keys are workers, max_queue"),
    ],
)
def test_a_wrong_option_is_named_by_its_key(options: dict[str, object], message: str) -> None:
    [problem] = problems(**options)
    assert problem.startswith(message), problem


def test_options_must_be_a_dict() -> None:
    backend = BackgroundBackend("default", {"OPTIONS": [("workers", 2)]})
    [message] = backend.check()
    assert message.msg == f"{WHERE} must be a dict, got list"


def test_every_wrong_key_is_reported_at_once() -> None:
    assert len(problems(workers="x", on_full="x", results="x", extra=1)) == 4


def test_the_system_check_reports_them_naming_the_key() -> None:
    with override_settings(TASKS=tasks_setting(workers="8", on_full="wait")):
        found = [m for m in checks.run_checks() if m.id == "django_background.E001"]
        assert [m.level for m in found] == [checks.ERROR, checks.ERROR]
        assert f"{WHERE}['workers']" in found[0].msg
        # What `manage.py check` (and runserver, at startup) runs:
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
        assert f"(django_background.E001) {WHERE}['workers'] must be a positive int" in str(
            raised.value
        )


def test_a_good_configuration_passes_the_check() -> None:
    with override_settings(TASKS=tasks_setting(workers=2)):
        assert [m for m in checks.run_checks() if m.id.startswith("django_background")] == []
        call_command("check")


def test_the_first_use_raises_improperly_configured_naming_the_key() -> None:
    with override_settings(TASKS=tasks_setting(max_queue="lots")):
        with pytest.raises(ImproperlyConfigured, match=re.escape(f"{WHERE}['max_queue']")):
            tasks.add.enqueue(1, 2)
        with pytest.raises(ImproperlyConfigured, match="max_queue"):
            api.task_backends["default"].get_result("any")
