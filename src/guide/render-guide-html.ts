import type { Block, GuideSection, Inline, SetupGuide, Text } from "./setup-guide.ts";

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * Markup built only by `html` templates: every interpolated string is escaped, other `Markup`
 * is kept, so a district's name can never become markup.
 */
export class Markup {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Part = string | number | Markup | readonly Markup[];

export function html(strings: TemplateStringsArray, ...parts: Part[]): Markup {
  let out = strings[0]!;
  parts.forEach((part, index) => {
    out += Array.isArray(part) ? part.map((m: Markup) => m.value).join("") : part instanceof Markup ? part.value : escapeHtml(String(part));
    out += strings[index + 1]!;
  });
  return new Markup(out);
}

// Fingerprints and other codes never wrap mid-string; table rows never split across pages.
const STYLE = `
@page { size: Letter; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 10.5pt; line-height: 1.45; color: #111; margin: 0 auto; max-width: 60rem; padding: 1.5rem; }
header { border-bottom: 2px solid #1d4f91; margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; color: #1d4f91; }
h2 { font-size: 1.25rem; margin: 1.6rem 0 .5rem; color: #1d4f91; break-after: avoid; page-break-after: avoid; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; break-after: avoid; page-break-after: avoid; }
h4 { font-size: .95rem; margin: 1rem 0 .3rem; break-after: avoid; page-break-after: avoid; }
.meta { color: #555; margin: 0 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 .8rem; font-size: .9em; }
th, td { border: 1px solid #b9c3cf; padding: .25rem .4rem; text-align: left; vertical-align: top; }
th { background: #e8eef6; }
tr, td, th { break-inside: avoid; page-break-inside: avoid; }
thead { display: table-header-group; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em; white-space: nowrap; overflow-wrap: normal; word-break: keep-all; background: #f2f4f7; padding: 0 .15em; border-radius: 2px; }
table.fingerprints { font-size: .78em; }
table.fingerprints td { white-space: nowrap; }
.note { border-left: 3px solid #c98a00; background: #fff8e6; padding: .35rem .6rem; margin: .5rem 0; break-inside: avoid; }
ol, ul { padding-left: 1.4rem; }
li { margin: .2rem 0; break-inside: avoid; }
section.template { break-inside: avoid; page-break-inside: avoid; }
@media print { body { max-width: none; padding: 0; } a { color: inherit; text-decoration: none; } }
`;

/** One self-contained page: inline CSS, no scripts, no outside resources. */
export function renderGuideHtml(guide: SetupGuide): string {
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${guide.title}</title>
<style>${new Markup(STYLE)}</style>
</head>
<body>
<header>
<h1>${guide.title}</h1>
<p class="meta">District <code>${guide.districtSlug}</code> · generated ${guide.generatedAt}</p>
</header>
<main>
${guide.sections.map((s) => sectionHtml(s, 2))}
</main>
</body>
</html>
`;
  return page.value;
}

function sectionHtml(s: GuideSection, level: number): Markup {
  const heading = new Markup(`h${Math.min(level, 6)}`);
  const leaf = s.subsections.length === 0 && level > 3;
  return html`<section id="${s.id}"${new Markup(leaf ? ' class="template"' : "")}>
<${heading}>${s.title}</${heading}>
${s.blocks.map(blockHtml)}
${s.subsections.map((sub) => sectionHtml(sub, level + 1))}
</section>
`;
}

function blockHtml(block: Block): Markup {
  switch (block.kind) {
    case "paragraph":
      return html`<p>${textHtml(block.text)}</p>\n`;
    case "note":
      return html`<p class="note">${textHtml(block.text)}</p>\n`;
    case "steps":
      return html`<ol>${block.items.map((item) => html`<li>${textHtml(item)}</li>`)}</ol>\n`;
    case "list":
      return html`<ul>${block.items.map((item) => html`<li>${textHtml(item)}</li>`)}</ul>\n`;
    case "table":
      return html`<table${new Markup(block.fingerprints ? ' class="fingerprints"' : "")}>
<thead><tr>${block.head.map((h) => html`<th>${h}</th>`)}</tr></thead>
<tbody>
${block.rows.map((row) => html`<tr>${row.map((cell) => html`<td>${textHtml(cell)}</td>`)}</tr>\n`)}</tbody>
</table>
`;
  }
}

function textHtml(text: Text): Markup[] {
  return text.map(inlineHtml);
}

function inlineHtml(part: Inline): Markup {
  if (typeof part === "string") return html`${part}`;
  if ("code" in part) return html`<code>${part.code}</code>`;
  return html`<strong>${part.strong}</strong>`;
}
