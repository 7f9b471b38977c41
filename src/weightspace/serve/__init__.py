"""Serve: weights on demand over HTTP (FastAPI + uvicorn, the optional extra ``serve``).

    from weightspace.serve import ServeSettings, create_app
    app = create_app("gen_dir", ServeSettings(token="s3cret", threads=2))

``weightspace serve GEN`` runs it; see ``app.py`` for the endpoints and ``limits.py`` for the
guard (auth, request size) every request passes first.
"""

from weightspace.serve.app import create_app
from weightspace.serve.limits import ServeSettings

__all__ = ["create_app", "ServeSettings"]
