"""Test infrastructure: a real MLflow tracking server and a loopback Databricks workspace.

The product never imports this package. Users can, to try and test launch notebooks
without a workspace (the way moto serves AWS users).
"""
