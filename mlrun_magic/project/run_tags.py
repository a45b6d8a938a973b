"""The extra MLflow tags a run request may carry (a sweep's nesting, a caller's own labels)."""

from __future__ import annotations

from mlrun_magic.errors import ArgumentsError

#: Tags only mlrun_magic and MLflow set: a caller's extra tags may not replace them.
OWN_TAG_PREFIXES = ("mlflow.source.", "mlflow.project.", "mlflow.databricks.", "mlflow.user",
                    "mlrun_magic.clientToken", "mlrun_magic.databricks.")


def check_extra_tags(tags) -> None:
    """Refuse extra run tags that are not text, too long for MLflow, or ours to set."""
    if not isinstance(tags, dict):
        raise ArgumentsError(f"tags must be a mapping of names to text, not {type(tags).__name__}")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ArgumentsError(f"tag {key!r} must be text with a text value")
        if not key or len(key) > 250 or len(value) > 8000:
            raise ArgumentsError(f"tag {key[:60]!r} is empty or too long for MLflow (names up "
                                 "to 250 characters, values up to 8,000)")
        if key.startswith(OWN_TAG_PREFIXES):
            raise ArgumentsError(f"tag {key!r} is set by mlrun_magic itself",
                                 hint="Choose another tag name.")
