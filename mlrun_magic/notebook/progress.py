"""The notebook's face of packaging progress: an HTML bar in the cell, updated in place.

Its own module so that ``%load_ext`` does not import packaging (pathspec, tarfile): only a
launch does.
"""

from __future__ import annotations

from mlrun_magic.packaging.progress import Progress, human_bytes


class HtmlProgress(Progress):
    """Packaging and upload progress as an HTML bar in the cell, updated in place."""

    def __init__(self, label: str = "Packaging"):
        super().__init__(label=label)
        self.handle = None

    def draw(self, done: int, total: int) -> None:
        from IPython.display import HTML, display

        pct = self.percent(done, total)
        html = HTML(f'<div style="font-family:system-ui,sans-serif;font-size:12px">{self.label} '
                    f'{human_bytes(done)} / {human_bytes(total)} <progress value="{pct:.0f}" '
                    f'max="100" style="width:240px"></progress> {pct:.0f}%</div>')
        if self.handle is None:
            self.handle = display(html, display_id=True)
        else:
            self.handle.update(html)
