"""XML records by element path, streamed with lxml's pull parser: memory stays flat for any file size.

The file is fed to the parser in bounded chunks and the finished records are taken after every
chunk, also when the chunk ends in a syntax error: every complete record before a break is
delivered, then the break is reported with its line, whatever lxml buffers internally (lxml 6.2's
iterparse dropped the records read in the same buffer as the error).

Each record element becomes a flat dict: its attributes, then each child element's text under
the child's local name (repeated children are joined into a JSON list; nested children are
flattened as `parent.child`). Processed elements are cleared and detached from the tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import BinaryIO

from lxml import etree

from connectors.files.formats import FileFormatError, FormatConfig, Record


def _qname(step: str, namespaces: dict[str, str]) -> str:
    if ":" in step:
        prefix, local = step.split(":", 1)
        if prefix not in namespaces:
            raise ValueError(f"record_path uses prefix {prefix!r} not in namespaces {sorted(namespaces)}")
        return f"{{{namespaces[prefix]}}}{local}"
    return step


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)


def _flatten(elem, out: dict, prefix: str = "") -> None:
    for k, v in elem.attrib.items():
        out[prefix + _local(k)] = v
    for child in elem:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        name = prefix + _local(child.tag)
        if len(child) or (child.attrib and prefix == ""):
            _flatten(child, out, name + ".")
            if child.text and child.text.strip():
                out[name] = child.text.strip()
            continue
        value = (child.text or "").strip()
        if name in out:  # repeated element: keep every value
            prev = out[name]
            out[name] = json.dumps((json.loads(prev) if prev.startswith("[") else [prev]) + [value], ensure_ascii=False)
        else:
            out[name] = value


RAW_LIMIT = 64 * 1024  # bytes of a record element kept as its raw content
CHUNK = 64 * 1024  # bytes fed to the parser at a time: bounds memory, not correctness


def read_xml(stream: BinaryIO, fmt: FormatConfig, notes: dict | None = None) -> Iterator[Record]:
    path = fmt.record_path or "record"
    steps = [_qname(s, fmt.namespaces) for s in path.strip("/").split("/") if s]
    tag, parents = steps[-1], steps[:-1]
    anchored = path.startswith("/")
    kwargs = {"encoding": fmt.encoding} if fmt.encoding.lower() != "auto" else {}
    parser = etree.XMLPullParser(events=("end",), tag=tag, huge_tree=True, recover=False, **kwargs)
    row = 0
    while True:
        chunk = stream.read(CHUNK)
        error = None
        try:
            parser.feed(chunk) if chunk else parser.close()
        except etree.XMLSyntaxError as exc:
            error = exc
        # What the parser finished before any error. A close() that fails reports the elements it
        # closed itself (a truncated file's open record): those are not records, so they are dropped.
        events = parser.read_events() if chunk or error is None else ()
        for _, elem in events:
            if parents and not _matches(elem, parents, anchored):
                continue
            row += 1
            fields: dict = {}
            _flatten(elem, fields)
            raw = etree.tostring(elem, encoding="utf-8", with_tail=False)[:RAW_LIMIT]
            yield row, elem.sourceline or 0, fields, None, raw
            _release(elem)
        if error is not None:
            raise FileFormatError(f"XML is not well formed at line {error.lineno}: {error.msg}") from None
        if not chunk:
            return


def _release(elem) -> None:
    """Why: the parser keeps the whole tree; clearing and dropping finished siblings keeps it flat."""
    elem.clear()
    parent = elem.getparent()
    while elem.getprevious() is not None and parent is not None:
        del parent[0]


def _matches(elem, parents: list[str], anchored: bool) -> bool:
    node = elem.getparent()
    for step in reversed(parents):
        if node is None or node.tag != step:
            return False
        node = node.getparent()
    return not anchored or node is None
