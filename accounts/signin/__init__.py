"""Signing in: OpenID Connect single sign-on, the trusted proxy header, passwords, throttling.

- ``oidc``: the mozilla-django-oidc backend and views, with endpoints from discovery.
- ``trusted_header``: Django's remote-user middleware and backend, only from trusted proxies.
- ``throttle``: django-axes' backend, handler and lockout page.
- ``services``: the one write that every sign-in path makes (profile, groups, admin).
"""
