"""A parameter value that is a comma-separated list: how the launch panel makes a sweep.

In a panel field, ``0.1, 0.3, 1.0`` is three values; two such fields are the cross product,
exactly as a ``sweep:`` grid. The rules, for text that holds a comma:

* the text is split at every comma that is not inside double quotes or brackets (``()``,
  ``[]``, ``{}``), and spaces around each value are dropped: ``[64, 32], [128, 64]`` is two
  values;
* a value wrapped in double quotes is taken as is, without its quotes: ``"a, b", c`` is
  ``a, b`` and ``c``;
* ``\\,`` is a comma and ``\\"`` a double quote, anywhere in the list: ``a\\, b`` is the
  one value ``a, b``;
* an empty value (``0.1,,0.3`` or a trailing comma) is refused: ``""`` is an empty text.

Text without a comma is one value, used exactly as typed (quotes and backslashes
included), as it always was.
"""

from __future__ import annotations

from mlrun_magic.project.sweep import SweepError

#: What a field's tooltip says about lists.
LIST_HELP = ('Commas make a sweep: 0.1, 0.3 launches one run per value. To keep a comma '
             'in a value, quote the value ("a, b") or write \\,')

_OPEN, _CLOSE = "([{", ")]}"
_ESCAPED = (",", '"')


def split_values(text: str) -> list[str] | None:
    """The values of ``text`` when it holds a comma (see the module's rules), else ``None``
    (one value, exactly as typed). A malformed list is a :class:`SweepError`."""
    if "," not in text:
        return None
    raw = _split(text)
    values = []
    for number, item in enumerate(raw, 1):
        item = item.strip()
        if not item:
            where = f"value {number} of {len(raw)}" if len(raw) > 1 else "the value"
            raise SweepError(f"{where} is empty (two commas in a row, or a comma at an end)",
                             hint='Remove the extra comma, or write "" for an empty text.')
        if len(item) >= 2 and item[0] == '"' and item[-1] == '"' and not _escaped(item, -1):
            item = item[1:-1]
        values.append(_unescape(item))
    return values


def _split(text: str) -> list[str]:
    """``text`` cut at its top-level commas (escapes and quotes left in place)."""
    items, start, quoted, depth, i = [], 0, False, 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1:i + 2] in _ESCAPED:
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in _OPEN:
            depth += 1
        elif not quoted and char in _CLOSE and depth:
            depth -= 1
        elif char == "," and not quoted and not depth:
            items.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise SweepError("a double quote is not closed",
                         hint='Close it, or write \\" for a double quote in a value.')
    items.append(text[start:])
    return items


def _escaped(item: str, index: int) -> bool:
    """Whether the character at ``index`` follows an escaping backslash."""
    at = index % len(item)
    backslashes = len(item[:at]) - len(item[:at].rstrip("\\"))
    return backslashes % 2 == 1


def _unescape(item: str) -> str:
    out, i = [], 0
    while i < len(item):
        if item[i] == "\\" and item[i + 1:i + 2] in _ESCAPED:
            out.append(item[i + 1])
            i += 2
        else:
            out.append(item[i])
            i += 1
    return "".join(out)
