"""Renders the retrieval corpus (bench/knowledge/recall.json) into the formats experts upload:
PDF, DOCX, HTML pages with navigation and footer noise, Markdown and plain text. The Vietnamese
sources are in sources/; the English ones are this project's own guides (docs/), rendered as
they were when this ran. Outputs go to docs/ here and are committed, so the benchmark needs
none of these packages: `pip install reportlab python-docx markdown && python3 make_corpus.py`."""

import datetime
import html
import os
import re
import shutil

import markdown
from docx import Document
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import PageBreak, Paragraph, Preformatted, SimpleDocTemplate, Table

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "docs")
pdfmetrics.registerFont(TTFont("DejaVu", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
pdfmetrics.registerFont(TTFont("DejaVuMono", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"))
STYLES = {
    1: ParagraphStyle("h1", fontName="DejaVu", fontSize=18, leading=23, spaceAfter=10),
    2: ParagraphStyle("h2", fontName="DejaVu", fontSize=14, leading=18, spaceBefore=8, spaceAfter=6),
    3: ParagraphStyle("h3", fontName="DejaVu", fontSize=12, leading=16, spaceAfter=4),
}
BODY = ParagraphStyle("body", fontName="DejaVu", fontSize=10.5, leading=14.5, spaceAfter=7)
CODE = ParagraphStyle("code", fontName="DejaVuMono", fontSize=8, leading=10, spaceAfter=7)

# (source, output name): the Vietnamese experts' material, then the project's guides.
CORPUS = [
    ("sources/dinh-duong-tieu-duong.md", "dinh-duong-tieu-duong.pdf"),
    ("sources/giac-ngu-tuoi-teen.md", "giac-ngu-tuoi-teen.docx"),
    ("sources/chay-bo-nguoi-moi.md", "chay-bo-nguoi-moi.html"),
    ("sources/tai-chinh-ca-nhan.md", "tai-chinh-ca-nhan.pdf"),
    ("sources/dau-tu-dai-han.md", "dau-tu-dai-han.docx"),
    ("sources/tieng-anh-giao-tiep.md", "tieng-anh-giao-tiep.md"),
    ("sources/ielts-writing.md", "ielts-writing.pdf"),
    ("sources/trong-rau-san-thuong.md", "trong-rau-san-thuong.html"),
    ("sources/nuoi-meo-can-ho.md", "nuoi-meo-can-ho.txt"),
    ("sources/giam-cang-thang.md", "giam-cang-thang.docx"),
    ("sources/ca-phe.md", "ca-phe.md"),
    ("sources/mua-nha-lan-dau.md", "mua-nha-lan-dau.pdf"),
    ("../../docs/streaming.md", "streaming.pdf"),
    ("../../docs/webhooks.md", "webhooks.html"),
    ("../../docs/idempotency.md", "idempotency.txt"),
    ("../../docs/usage.md", "usage.docx"),
    ("../../docs/openai.md", "openai.pdf"),
    ("../../docs/browser.md", "browser.html"),
    ("../../docs/api.md", "api.md"),
    ("../../docs/feedback.md", "feedback.docx"),
]


def blocks(text):
    """Markdown as ('h', level, text), ('p', text), ('table', rows) and ('code', text)."""
    out, para, lines = [], [], text.split("\n")
    i = 0

    def flush():
        if para:
            out.append(("p", " ".join(l.strip() for l in para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(("code", "\n".join(lines[i + 1:j])))
            i = j + 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            out.append(("h", len(m.group(1)), m.group(2)))
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            out.append(("table", rows))
            continue
        elif not line.strip():
            flush()
        elif re.match(r"^\s*[-*] ", line):
            flush()
            para.append(line.strip()[2:])
        else:
            para.append(line)
        i += 1
    flush()
    return out


def plain(text):
    """Inline Markdown dropped: `code`, **bold**, [link](url)."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text.replace("**", "").replace("`", "")


def pdf(bs, path):
    story, h2 = [], 0
    for b in bs:
        if b[0] == "h":
            if b[1] == 2:
                h2 += 1
                # Sections two and four start a page: every PDF has several.
                if h2 in (2, 4):
                    story.append(PageBreak())
            story.append(Paragraph(html.escape(plain(b[2])), STYLES[min(b[1], 3)]))
        elif b[0] == "p":
            story.append(Paragraph(html.escape(plain(b[1])), BODY))
        elif b[0] == "code":
            story.append(Preformatted(b[1], CODE))
        else:
            rows = [[Paragraph(html.escape(plain(c)), BODY) for c in r] for r in b[1]]
            story.append(Table(rows, style=[("GRID", (0, 0), (-1, -1), 0.5, "grey")]))
    SimpleDocTemplate(path, pagesize=A4, invariant=True, leftMargin=2 * cm, rightMargin=2 * cm).build(story)


def docx(bs, path):
    d = Document()
    for b in bs:
        if b[0] == "h":
            d.add_heading(plain(b[2]), level=min(b[1], 3))
        elif b[0] in ("p", "code"):
            d.add_paragraph(plain(b[1]))
        else:
            t = d.add_table(rows=len(b[1]), cols=len(b[1][0]))
            for r, row in enumerate(b[1]):
                for c, cell in enumerate(row):
                    t.cell(r, c).text = plain(cell)
    d.core_properties.created = datetime.datetime(2026, 12, 6)
    d.save(path)


NOISE = """<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{title} | Chuyên gia chia sẻ</title>
<style>body{{font-family:sans-serif}}</style><script>window.dataLayer=[];</script></head><body>
<header><a href="/">Chuyên gia chia sẻ</a><nav><ul><li><a href="/suc-khoe">Sức khỏe</a></li><li><a href="/tai-chinh">Tài chính</a></li>
<li><a href="/khuyen-mai">Khuyến mãi khóa học giảm 40% hôm nay</a></li><li><a href="/dang-nhap">Đăng nhập</a></li></ul></nav></header>
<div class="cookie-banner">Trang web dùng cookie để cải thiện trải nghiệm. <button>Đồng ý</button></div>
<main><article>{body}</article>
<aside><h3>Bài viết liên quan</h3><ul><li><a href="/a">Mười mẹo tiết kiệm điện mùa hè</a></li><li><a href="/b">Đăng ký nhận bản tin</a></li></ul></aside></main>
<footer><p>© 2026 Chuyên gia chia sẻ. Giấy phép số 123/GP-BTTTT.</p><p><a href="/lien-he">Liên hệ quảng cáo</a> · <a href="/dieu-khoan">Điều khoản</a></p></footer>
</body></html>
"""


def page(text, path):
    title = plain(re.search(r"^# (.*)$", text, re.M).group(1))
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    with open(path, "w", encoding="utf-8") as f:
        f.write(NOISE.format(title=html.escape(title), body=body))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for source, name in CORPUS:
        with open(os.path.join(HERE, source), encoding="utf-8") as f:
            text = f.read()
        path = os.path.join(OUT, name)
        ext = name.rsplit(".", 1)[1]
        if ext == "pdf":
            pdf(blocks(text), path)
        elif ext == "docx":
            docx(blocks(text), path)
        elif ext == "html":
            page(text, path)
        elif ext == "md":
            shutil.copy(os.path.join(HERE, source), path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(re.sub(r"^#{1,6}\s+", "", plain(text), flags=re.M))


if __name__ == "__main__":
    main()
