"""Real local infrastructure for development and tests: Kafka, PostgreSQL and friends.

Everything binds to loopback, lives under one state folder, and is fetched only from package
registries (Maven Central for Kafka's jars, Debian for PostgreSQL), cached outside the repo.
"""
