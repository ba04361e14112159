"""FastAPI and Starlette adapter of `background`: a lifespan and a dependency.

    from fastapi import FastAPI
    from fastapi_background import BackgroundDep, lifespan

    app = FastAPI(lifespan=lifespan(workers=8))

    @app.post("/signup")
    async def signup(email: str, bg: BackgroundDep) -> dict[str, str]:
        bg.submit(send_welcome, email)
        return {"status": "queued"}

Only `BackgroundDep` needs FastAPI; the rest works on a plain Starlette app.
"""

from __future__ import annotations

from typing import Any

try:
    import starlette as _starlette  # noqa: F401  (the one check that Starlette is installed)
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        "fastapi_background needs Starlette (FastAPI brings it): pip install fastapi, or "
        "install background with its 'fastapi' extra (see the README's Install)",
        name=missing.name,
    ) from missing

from background_core import __version__ as __version__

from ._dependency import background_of as background_of
from ._dependency import get_background as get_background
from ._lifespan import lifespan as lifespan
from ._pool import pool as pool

__all__: tuple[str, ...] = ("background_of", "get_background", "lifespan", "pool")

try:
    from ._depends import BackgroundDep as BackgroundDep
except ModuleNotFoundError as missing:  # Starlette without FastAPI
    _missing = missing

    def __getattr__(name: str) -> Any:
        if name == "BackgroundDep":
            raise ImportError(
                "BackgroundDep needs FastAPI: pip install fastapi, or install background with "
                "its 'fastapi' extra (see the README's Install)"
            ) from _missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

else:
    __all__ += ("BackgroundDep",)
