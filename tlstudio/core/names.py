"""Names from a user's disk, made safe to show: characters that hide, reorder or break text become visible escapes.

A file or folder name may hold control characters (a newline, an escape that recolours a terminal)
or bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE makes ``cat\\u202egpj.exe`` look like
``catexe.jpg``). Wherever a name is shown, it goes through ``printable`` first, so what a person
reads is what is on disk. This is for display only: indexes, paths and files keep the real names.
"""

from __future__ import annotations

import os
import re
import unicodedata

# Joiners are format characters too, but they are part of correct spelling (Persian, Indic scripts,
# emoji sequences) and neither reorder nor hide other text.
_KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
# Cc: C0/C1 controls; Cf: format (bidi embeddings, overrides, isolates and marks, zero-width space,
# BOM, ...); Zl/Zp: line and paragraph separators; Cs: lone surrogates, which is how Python spells
# bytes of a file name that are not valid UTF-8 (printing one raw would fail).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_hidden(ch: str) -> bool:
    """True for a character that is invisible, moves other text, or breaks a line when shown."""
    return ch not in _KEPT_FORMAT and unicodedata.category(ch) in _HIDDEN_CATEGORIES


def is_text(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def raw_spelling(name: str) -> str:
    """A name that is not text, spelled with its undecodable bytes as ``\\xNN``: what a terminal's ``ls -b`` shows."""
    try:
        return printable(os.fsencode(name).decode("utf-8", "backslashreplace"))
    except UnicodeEncodeError:  # a lone surrogate that no file system byte made (Windows)
        return printable(name)


def escape(ch: str) -> str:
    """``\\x1b``, ``\\u202e`` or ``\\U000e0001``: the character's code point, the way Python writes it."""
    cp = ord(ch)
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def printable(name: object) -> str:
    """``name`` as text with every hidden character (see ``is_hidden``) written as its visible escape.

    A backslash already in the name is left alone (Windows paths are full of them), so the result is
    for reading, not for turning back into the name.
    """
    text = str(name)
    if text.isprintable():  # the common case: nothing to do (isprintable is False for all of the above)
        return text
    return "".join(escape(ch) if is_hidden(ch) else ch for ch in text)


# json.dumps already escapes the C0 controls inside strings; those outside are its own line breaks and indents.
_JSON_HIDDEN = re.compile("[^\x00-\x7e]")


def printable_json(text: str) -> str:
    """JSON text (``ensure_ascii=False``) with every hidden character written as a JSON ``\\uXXXX`` escape.

    Valid JSON that loads back to exactly the same strings: hidden characters can only sit inside
    strings, where JSON allows the escape (a character above U+FFFF becomes its surrogate pair).
    """
    return _JSON_HIDDEN.sub(lambda m: _json_escape(m.group()) if is_hidden(m.group()) else m.group(), text)


def _json_escape(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    cp -= 0x10000
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
