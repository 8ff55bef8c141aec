"""A tiny document model rendered twice: Markdown (GitHub) and static HTML.

A page is a title and a list of blocks.  Inline text may hold links as
`[text](target)`; a target without a file extension names another page
and becomes `target.md` or `target.html`, so both renderings link within
themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    src: str
    alt: str


@dataclass(frozen=True)
class Mermaid:
    code: str


@dataclass(frozen=True)
class Pre:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


Block = Heading | Para | Table | Image | Mermaid | Pre | Bullets


@dataclass
class Page:
    name: str
    """Path of the page within the site, without extension (e.g. "scenarios/handshake")."""
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Page:
        self.blocks.extend(blocks)
        return self

    @property
    def depth(self) -> int:
        return self.name.count("/")


def _target(target: str, ext: str, page: Page) -> str:
    if target.startswith(("http://", "https://", "#")):
        return target
    up = "../" * page.depth
    last = target.rsplit("/", 1)[-1]
    if "." in last:
        return up + target
    anchor = ""
    if "#" in target:
        target, anchor = target.split("#", 1)
        anchor = "#" + anchor
    return f"{up}{target}.{ext}{anchor}"


# ---------------------------------------------------------------- Markdown


def _md_inline(text: str, page: Page) -> str:
    return LINK.sub(lambda m: f"[{m.group(1)}]({_target(m.group(2), 'md', page)})", text)


def markdown(page: Page) -> str:
    out = [f"# {page.title}", ""]
    for block in page.blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Para):
            out += [_md_inline(block.text, page), ""]
        elif isinstance(block, Bullets):
            out += [f"- {_md_inline(item, page)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            cells = [[_md_inline(c, page).replace("|", "\\|") for c in row] for row in block.rows]
            out.append("| " + " | ".join(block.headers) + " |")
            out.append("|" + "|".join("---" for _ in block.headers) + "|")
            out += ["| " + " | ".join(row) + " |" for row in cells]
            out.append("")
        elif isinstance(block, Image):
            out += [f"![{block.alt}]({_target(block.src, 'md', page)})", ""]
        elif isinstance(block, Mermaid):
            out += ["```mermaid", block.code.rstrip("\n"), "```", ""]
        elif isinstance(block, Pre):
            out += ["```", block.text.rstrip("\n"), "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# -------------------------------------------------------------------- HTML

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; max-width: 1180px; margin: 0 auto;
       padding: 0 24px 48px; color: #1d2733; line-height: 1.45; }
nav { padding: 12px 0; border-bottom: 1px solid #ccd5e0; margin-bottom: 8px; }
nav a { margin-right: 16px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border: 1px solid #ccd5e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef3fb; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
img { max-width: 100%; border: 1px solid #e3e8ef; background: white; }
details { margin: 8px 0; }
"""

NAV = (("Overview", "index"), ("Properties", "properties"), ("Results", "results"))


CODE = re.compile(r"`([^`]+)`")


def _html_text(text: str) -> str:
    return CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text))


def _html_inline(text: str, page: Page) -> str:
    pieces, last = [], 0
    for match in LINK.finditer(text):
        pieces.append(_html_text(text[last : match.start()]))
        href = escape(_target(match.group(2), "html", page))
        pieces.append(f'<a href="{href}">{_html_text(match.group(1))}</a>')
        last = match.end()
    pieces.append(_html_text(text[last:]))
    return "".join(pieces)


def html(page: Page, site: bool = True) -> str:
    """The page as HTML; `site`: with the docs site's navigation bar."""
    up = "../" * page.depth
    links = NAV if site else ()
    nav = " ".join(f'<a href="{up}{target}.html">{label}</a>' for label, target in links)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(page.title)} - synack</title>",
        f'<link rel="stylesheet" href="{up}style.css">',
        "</head><body>",
        f"<nav>{nav}</nav>",
        f"<h1>{escape(page.title)}</h1>",
    ]
    for block in page.blocks:
        if isinstance(block, Heading):
            level = min(block.level, 6)
            out.append(f"<h{level}>{_html_inline(block.text, page)}</h{level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_html_inline(block.text, page)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_html_inline(i, page)}</li>" for i in block.items)
            out.append(f"<ul>{items}</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{escape(h)}</th>" for h in block.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c, page)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            src = escape(_target(block.src, "html", page))
            out.append(f'<p><a href="{src}"><img src="{src}" alt="{escape(block.alt)}"></a></p>')
        elif isinstance(block, Mermaid):
            out.append(
                "<details><summary>Mermaid source (renders on GitHub)</summary>"
                f"<pre>{escape(block.code)}</pre></details>"
            )
        elif isinstance(block, Pre):
            out.append(f"<pre>{escape(block.text)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
