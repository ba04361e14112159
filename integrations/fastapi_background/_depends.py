"""`BackgroundDep`: the annotated parameter for FastAPI handlers (needs FastAPI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from background_core import Background

from ._dependency import get_background

BackgroundDep = Annotated[Background, Depends(get_background)]
"""A handler parameter ``bg: BackgroundDep`` receives the app's pool."""
