import type { Block, GuideSection, Inline, SetupGuide, Text } from "./setup-guide.ts";

/** Plain text in Markdown: characters that would start markup are escaped, line breaks become spaces. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\r\n]+/g, " ").replace(/[\\`*_[\]<>|#~&]/g, (ch) => `\\${ch}`);
}

/** Code in Markdown: fenced with more backticks than it holds in a row, never broken across lines. */
export function markdownCode(code: string): string {
  const flat = code.replace(/[\r\n]+/g, " ");
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  const pad = flat.startsWith("`") || flat.endsWith("`") ? " " : "";
  // A `|` ends a table cell even inside code.
  return `${fence}${pad}${flat.replaceAll("|", "\\|")}${pad}${fence}`;
}

export function renderGuideMarkdown(guide: SetupGuide): string {
  return (
    [
      `# ${escapeMarkdown(guide.title)}`,
      `District ${markdownCode(guide.districtSlug)} · generated ${escapeMarkdown(guide.generatedAt)}`,
      ...guide.sections.map((s) => sectionMarkdown(s, 2)),
    ].join("\n\n") + "\n"
  );
}

function sectionMarkdown(s: GuideSection, level: number): string {
  return [`${"#".repeat(Math.min(level, 6))} ${escapeMarkdown(s.title)}`, ...s.blocks.map(blockMarkdown), ...s.subsections.map((sub) => sectionMarkdown(sub, level + 1))].join("\n\n");
}

function blockMarkdown(block: Block): string {
  switch (block.kind) {
    case "paragraph":
      return textMarkdown(block.text);
    case "note":
      return `> ${textMarkdown(block.text)}`;
    case "steps":
      return block.items.map((item, index) => `${index + 1}. ${textMarkdown(item)}`).join("\n");
    case "list":
      return block.items.map((item) => `- ${textMarkdown(item)}`).join("\n");
    case "table": {
      const row = (cells: readonly string[]) => `| ${cells.map((cell) => cell || " ").join(" | ")} |`;
      return [row(block.head.map(escapeMarkdown)), row(block.head.map(() => "---")), ...block.rows.map((cells) => row(cells.map(textMarkdown)))].join("\n");
    }
  }
}

function textMarkdown(text: Text): string {
  return text.map(inlineMarkdown).join("");
}

function inlineMarkdown(part: Inline): string {
  if (typeof part === "string") return escapeMarkdown(part);
  if ("code" in part) return markdownCode(part.code);
  return `**${escapeMarkdown(part.strong)}**`;
}
