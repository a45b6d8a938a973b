"""Shared helpers: read a text file into lower-case words."""

import re


def read_words(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return re.findall(r"[a-z]+", f.read().lower())
