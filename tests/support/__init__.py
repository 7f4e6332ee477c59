"""Test helpers shared across suites: the loopback OAuth 2.0 authorization server."""
