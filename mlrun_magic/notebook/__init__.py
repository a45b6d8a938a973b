"""The notebook front end: the ``%project_run`` magic, its live views and the launch panel.

Nothing here is imported by ``import mlrun_magic``; ``%load_ext mlrun_magic`` imports the magic
and the live view, the panel and its widgets only on first use.
"""
