"""MLflow Projects, resolved the way MLflow does it: spec, environment, command, location."""

from mlrun_magic.project.spec import EntryPoint, Parameter, Project, load_project

__all__ = ["EntryPoint", "Parameter", "Project", "load_project"]
