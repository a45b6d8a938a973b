"""Databricks access: credentials, the REST client, storage, jobs, compute, the driver's bootstrap.

A service layer: it may import the core and :mod:`mlrun_magic.tracking`, never a backend or a
front end. ``bootstrap.py`` is uploaded alone and imports nothing of ours.
"""
