"""Terapi's shared package: models, stores, services and the provider catalog.

Deployed as a Lambda layer (importable from /opt/python) and put on the path the same way in
tests and in the local gateway, so every environment imports exactly the same code.
"""
