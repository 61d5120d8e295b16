"""Encoding detection for text formats (GBK/GB18030 files are common in government systems)."""

from __future__ import annotations

import codecs
from typing import BinaryIO

from charset_normalizer import from_bytes

SAMPLE = 256 * 1024
# GB2312 and GBK are subsets of GB18030: decoding with the superset never fails on their bytes.
_PROMOTE = {"gb2312": "gb18030", "gbk": "gb18030", "hz": "gb18030", "cp936": "gb18030"}


def detect(stream: BinaryIO, declared: str = "auto") -> str:
    """The encoding to use; `declared` wins unless it is "auto". The stream is rewound to where it was."""
    if declared and declared.lower() != "auto":
        return _PROMOTE.get(codecs.lookup(declared).name, codecs.lookup(declared).name)
    start = stream.tell()
    sample = stream.read(SAMPLE)
    stream.seek(start)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if len(sample) == SAMPLE and exc.start >= len(sample) - 4:  # the sample cut a character in half
            return "utf-8"
    names = [codecs.lookup(m.encoding).name for m in from_bytes(sample)]
    if b"\x00" not in sample:  # UTF-16/32 text is full of NULs; without them it is a false match
        names = [n for n in names if not n.startswith(("utf-16", "utf-32"))]
    # Short samples fit several CJK codecs equally well; GB18030 is the likely one in our systems.
    if any(_PROMOTE.get(n, n) == "gb18030" for n in names) or not names:
        try:
            sample.decode("gb18030")
            return "gb18030"
        except UnicodeDecodeError:
            pass
    return _PROMOTE.get(names[0], names[0]) if names else "latin-1"
