import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { escapeHtml, html, Markup } from "../../src/guide/render-guide-html.ts";
import { escapeMarkdown, markdownCode } from "../../src/guide/render-guide-markdown.ts";
import { codeSpans, describeSeconds } from "../../src/guide/setup-guide.ts";

describe("guide rendering helpers", () => {
  it("escapes every interpolated string in HTML and keeps only markup built by html``", () => {
    const name = `<img src=x onerror="alert(1)">'&`;
    const out = html`<p title="${name}">${name}${[html`<b>${name}</b>`]}${new Markup("<hr>")}</p>`.value;
    assert.equal(out, `<p title="${escapeHtml(name)}">${escapeHtml(name)}<b>${escapeHtml(name)}</b><hr></p>`);
    assert.doesNotMatch(escapeHtml(name), /[<>"'&](?!#\d+;)/);
  });

  it("escapes Markdown text and fences code that holds backticks or pipes", () => {
    assert.equal(escapeMarkdown("a|b *c* [d](e) <f>\n# g"), "a\\|b \\*c\\* \\[d\\](e) \\<f\\> \\# g");
    assert.equal(markdownCode("SHA256:ab+/c"), "`SHA256:ab+/c`");
    assert.equal(markdownCode("a`b"), "``a`b``");
    assert.equal(markdownCode("`x"), "`` `x ``");
    assert.equal(markdownCode("a|b"), "`a\\|b`");
  });

  it("turns the spec's backticks into code parts, and seconds into words", () => {
    assert.deepEqual(codeSpans("Every `SchoolID` holds `School_Number`."), ["Every ", { code: "SchoolID" }, " holds ", { code: "School_Number" }, "."]);
    assert.deepEqual([describeSeconds(300), describeSeconds(60), describeSeconds(90), describeSeconds(0.5)], ["5 minutes", "1 minute", "90 seconds", "0.5 seconds"]);
  });
});
