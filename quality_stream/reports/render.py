"""A report's figures rendered as HTML (Jinja2, SVG charts inline: one self-contained file) and PDF
(reportlab; Chinese in its built-in CID font STSong-Light, which needs no font file; PNG charts)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from quality_stream.reports.charts import CHARTS
from quality_stream.reports.labels import labels

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"]))


def render_html(data: dict[str, Any], lang: str = "zh") -> str:
    charts = {}
    for name, draw in CHARTS.items():
        svg = draw(data, "svg").decode("utf-8")
        charts[name] = svg[svg.index("<svg") :]  # without the XML prolog: inline in the page
    return _env.get_template("report.html").render(d=data, L=labels(lang), lang=lang, charts=charts)


def render_pdf(data: dict[str, Any], lang: str = "zh") -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    L = labels(lang)
    h1 = ParagraphStyle("h1", fontName="STSong-Light", fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", fontName="STSong-Light", fontSize=12, leading=18, spaceBefore=8, spaceAfter=4)
    body = ParagraphStyle("body", fontName="STSong-Light", fontSize=9, leading=13)

    def table(header: list[str], rows: list[list[Any]]) -> Table:
        cells = [[Paragraph(str(c), body) for c in header]] + [[Paragraph(_text(c), body) for c in r] for r in rows]
        t = Table(cells, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ]
            )
        )
        return t

    def chart(name: str) -> Image:
        png = CHARTS[name](data, "png")
        img = Image(io.BytesIO(png))
        scale = 170 * mm / img.imageWidth
        img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
        return img

    d = data
    t = d["totals"]
    story: list = [
        Paragraph(f"{L['title']} · {_esc(d['title'])} · {L[d['period']]}", h1),
        Paragraph(
            f"{L['period']}: {d['start']} – {d['end']}  ({L['previous']}: {d['previous_start']} – {d['start']})", body
        ),
        Spacer(1, 4 * mm),
        table(
            [L["checked"], L["problems"], L["ratio"], L["score"], L["change"]],
            [[t["evaluated"], t["failed"], f"{100 * t['ratio']:.4f}%", t["score"], d["score_change"]]],
        ),
        Paragraph(L["tickets"], h2),
        Paragraph(
            f"{L['opened']}: {d['tickets']['opened']}  {L['closed']}: {d['tickets']['closed']}"
            if d.get("tickets")
            else L["no_tickets"],
            body,
        ),
        Paragraph(L["by_dimension"], h2),
        chart("dimension"),
        table(
            [L["dimension"], L["checked"], L["problems"], L["score"]],
            [
                [L.get(r["dimension"], r["dimension"]), r["evaluated"], r["failed"], r["score"]]
                for r in d["by_dimension"]
            ],
        ),
        Paragraph(L["trend"], h2),
        chart("trend"),
        Paragraph(L["by_rule"], h2),
        chart("rule"),
        table(
            [L["rule"], L["dimension"], L["checked"], L["problems"]],
            [[r["rule"], L.get(r["dimension"], r["dimension"]), r["evaluated"], r["failed"]] for r in d["by_rule"]],
        ),
        Paragraph(L["top_tables"], h2),
        table(
            [L["table"], L["system"], L["problems"], L["score"]],
            [[r["dataset"], r["system"], r["failed"], r["score"]] for r in d["top_datasets"]],
        ),
        Paragraph(L["causes"], h2),
        table([L["message"], L["problems"]], [[r["message"], r["failed"]] for r in d["causes"]]),
    ]
    if not t["evaluated"]:
        story.insert(4, Paragraph(L["none"], body))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, title=f"{L['title']} {d['title']}", leftMargin=20 * mm, rightMargin=20 * mm
    )
    doc.build(story)
    return buf.getvalue()


def _esc(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(value: Any) -> str:
    return "-" if value is None else _esc(value)
