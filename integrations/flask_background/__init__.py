"""Flask extension of `background`: run functions in background threads from handlers.

    from flask_background import Background

    bg = Background()

    @bg.task
    def send_welcome(user_id: int) -> None: ...

    def create_app() -> Flask:
        app = Flask(__name__)
        bg.init_app(app)
        return app

Each app gets a pool of its own, configured by its ``BACKGROUND_*`` keys at `init_app`.
"""

from __future__ import annotations

try:
    import flask as _flask  # noqa: F401  (the one check that Flask is installed)
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        "flask_background needs Flask: pip install flask, or install background with its "
        "'flask' extra (see the README's Install)",
        name=missing.name,
    ) from missing

from background_core import __version__ as __version__

from ._extension import Background as Background

__all__ = ("Background",)
