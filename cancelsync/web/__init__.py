"""The order center: a small web page and JSON API for the people who handle the exceptions.

Served by the service itself when ``worker.web_listen`` is set, behind the merchant's HTTPS
reverse proxy. ``server`` runs it (``serving`` wraps the service loop), ``app`` is the WSGI
application (authentication, CSRF, routing, security headers), ``auth`` the token, sessions
and throttle, ``gather`` the data shown, ``views`` the pages and API (Jinja2 templates in
``templates/``), ``http`` their request and response.
``python -m cancelsync.web`` serves it alone, on a database no worker runs on (``make demo``).
"""

from __future__ import annotations
