"""The one place that imports Django's tasks API, and says what to install without it.

Django 6 ships it as ``django.tasks`` (Python 3.12 and later); on Django 5.2 the
``django-tasks`` backport (0.12 or later) has the same API under the name ``django_tasks``.
The two differ only in where the JSON normalizer lives and in the names of exceptions this
adapter never raises.
"""

from __future__ import annotations

_INSTALL = "install background with its 'django' extra (see the README's Install)"

try:
    import django as _django  # noqa: F401  (the one check that Django is installed)
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        f"django_background needs Django: pip install django, or {_INSTALL}",
        name=missing.name,
    ) from missing

try:
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskError
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
except ModuleNotFoundError:
    try:
        # Importing its checks registers the framework's system check (which calls each
        # backend's check()), as importing django.tasks does in Django 6.
        import django_tasks.checks  # noqa: F401
        from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task, TaskError
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json
    except ModuleNotFoundError as missing:
        raise ImportError(
            "django_background needs Django's tasks framework: Django 6 (django.tasks), or "
            "on Django 5.2 its backport, pip install django-tasks; or " + _INSTALL
        ) from missing

__all__ = (
    "BaseTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "normalize_json",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
)
