"""Flask extension of `background`: run functions in background threads from handlers.

from flask_background import Background

bg = Background()

@bg.task
def send_welcome(user_id: int) -> None: ...

def create_app() -> Flask:
    app = Flask(__name__)
    bg.init_app(app)
    return app
"""

from __future__ import annotations

from ._extension import Background as Background

__all__ = ("Background",)
