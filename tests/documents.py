"""Small non-PDF documents built in the test itself (the shared corpus holds PDFs only)."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"""
PACKAGE_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Target="word/document.xml"
 Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>
</Relationships>"""
WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
PAGE_BREAK = "\f"  # marks that the next paragraph starts a new page (as Word records it when it renders)


def docx(paragraphs: list[str], *, app_pages: int | None = None) -> bytes:
    """A minimal WordprocessingML package python-docx (and so unstructured) opens."""
    body, new_page = "", False
    for text in paragraphs:
        if text == PAGE_BREAK:
            new_page = True
            continue
        rendered_break = "<w:lastRenderedPageBreak/>" if new_page else ""
        body += f'<w:p><w:r>{rendered_break}<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        new_page = False
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{WORD_NS}"><w:body>{body}</w:body></w:document>'
    )
    parts = {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": PACKAGE_RELS, "word/document.xml": document}
    if app_pages is not None:
        parts["docProps/app.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?><Properties xmlns='
            '"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            f"<Pages>{app_pages}</Pages></Properties>"
        )
    return zip_of(parts)


def zip_of(parts: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def with_declared_size(data: bytes, entry: str, size: int) -> bytes:
    """The ZIP with ``entry``'s declared uncompressed size (local header and central directory) set to ``size``."""
    name = entry.encode()
    out = bytearray(data)
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = out.find(signature)
        while at >= 0:
            name_offset = at + (30 if signature == b"PK\x03\x04" else 46)
            if out[name_offset : name_offset + len(name)] == name:
                out[at + size_offset : at + size_offset + 4] = size.to_bytes(4, "little")
            at = out.find(signature, at + 4)
    return bytes(out)
