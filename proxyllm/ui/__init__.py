"""The web dashboard at ``/ui``: a static single-page app over the proxy's own JSON admin API.

- ``session.py``: the sign-in session (the key sealed in an HttpOnly cookie) and CSRF tokens.
- ``bridge.py``: ``/ui/api/<path>`` forwards an allowlisted API call in process, as the signed-in key.
- ``assets.py``: the packaged static files (``static/``), served from memory.
- ``routes.py``: the ``/ui`` routes (pages, assets, sign-in, sign-out, session, bridge).
"""
