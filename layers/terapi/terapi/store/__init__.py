"""Stores: small interfaces over DynamoDB (everything not secret) and Secrets Manager (secrets).

Stores know AWS and item layouts; they know nothing of HTTP and never import a service.
"""
