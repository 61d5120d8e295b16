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
import re
from collections.abc import Iterator
from typing import BinaryIO

from lxml import etree

from connectors.files.formats import FileFormatError, FormatConfig, FormatConfigError, Record, Refusal


def _qname(step: str, namespaces: dict[str, str]) -> str:
    if ":" in step:
        prefix, local = step.split(":", 1)
        if prefix not in namespaces:
            raise FormatConfigError(f"record_path uses prefix {prefix!r} not in namespaces {sorted(namespaces)}")
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
    if fmt.recover:
        yield from read_xml_recovering(stream, fmt, notes if notes is not None else {})
        return
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


MAX_RECORD = 8 * 1024 * 1024  # bytes looked through for the end of one record (recover mode)


def _record_end(tags: re.Pattern, buf: bytes, start: int) -> int | None:
    """The end of the record element starting at `start`: after the closing tag where the depth of
    its name returns to zero (nested elements of the same name counted), or None if not in `buf`."""
    depth = 0
    for tag in tags.finditer(buf, start):
        if tag.group(1):
            depth -= 1
        elif not tag.group(0).endswith(b"/>"):
            depth += 1
        if depth <= 0:
            return tag.end()
    return None


_START = re.compile(rb"<(?![?!/])[^>]*>")  # the root element's start tag (its namespace declarations)
_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")


def read_xml_recovering(stream: BinaryIO, fmt: FormatConfig, notes: dict) -> Iterator[Record]:
    """`recover: true`: each record element (by the last step of `record_path`, as written in the
    file) is cut out of the byte stream and parsed alone inside the root's start tag (so its
    namespaces resolve); a malformed one is refused (`xml_broken`, its line, its bytes) and
    reading goes on with the next. Parent steps of the path are not checked. A record element may
    contain elements of its own name: its end is where the depth of that name returns to zero; a
    record that never gets there (unclosed; looked for up to MAX_RECORD bytes) is broken up to the
    next opening tag of the name. Memory: one record plus one chunk."""
    last = (fmt.record_path or "record").strip("/").split("/")[-1]
    buf = stream.read(CHUNK)
    declared = re.match(rb"""\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""", buf)
    encoding = fmt.encoding if fmt.encoding.lower() != "auto" else declared.group(1).decode() if declared else "utf-8"
    name = re.escape(last.encode(encoding))  # the tag as the file's bytes spell it
    opening = re.compile(rb"<" + name + rb"(?=[\s>/])")
    tags = re.compile(rb"<(/?)" + name + rb"(?=[\s>/])[^>]*>")  # opening, closing and empty tags of the name
    consumed_lines, row = 1, 0  # consumed_lines: line number at buf[0]
    decl, root_start, root_end = b"", None, b""
    eof = False
    broken = 0
    while True:
        start = opening.search(buf)
        if root_start is None:
            m = _DECL.match(buf)
            if m:
                decl = m.group(0)
            rm = _START.search(buf, m.end() if m else 0)
            if rm and (start is None or rm.start() < start.start()):
                root_start = rm.group(0)
                tag = re.match(rb"<([^\s>/]+)", root_start).group(1)
                root_end = b"</" + tag + b">"
        end = _record_end(tags, buf, start.start()) if start else None
        nxt = opening.search(buf, start.end()) if start else None
        unclosed = start and end is None and (eof or len(buf) - start.start() > MAX_RECORD)
        if unclosed and nxt:  # never closed before the next began: broken up to there
            piece, stop = buf[start.start() : nxt.start()], nxt.start()
        elif start and end:
            piece, stop = buf[start.start() : end], end
        elif eof or unclosed:
            if start:  # a truncated last record
                piece, stop = buf[start.start() :], len(buf)
            else:
                return
        else:
            chunk = stream.read(CHUNK)
            if not chunk:
                eof = True
            buf += chunk
            continue
        line = consumed_lines + buf.count(b"\n", 0, start.start())
        row += 1
        document = decl + (root_start or b"<root>") + piece + (root_end if root_start else b"</root>")
        try:
            elem = etree.fromstring(document, etree.XMLParser(huge_tree=True, resolve_entities=False))[0]
        except (etree.XMLSyntaxError, IndexError) as exc:
            broken += 1
            notes["broken_elements"] = broken
            detail = re.sub(r",? line \d+, column \d+$", "", getattr(exc, "msg", None) or str(exc))
            yield row, line, None, Refusal("xml_broken", detail=detail), piece[:RAW_LIMIT]
        else:
            fields: dict = {}
            _flatten(elem, fields)
            yield row, line, fields, None, piece[:RAW_LIMIT]  # line: where the record begins
        consumed_lines += buf.count(b"\n", 0, stop)
        buf = buf[stop:]
