// Markdown for answers (static/js/chat/markdown.js) under node: DOMPurify with a jsdom window,
// the same marked and highlight.js as the page. Hostile text never becomes live markup, whole
// or streamed; a streamed answer ends as the whole render would draw it, and its finished
// blocks are not drawn again while it grows.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { openBlockIndex } from "../../static/js/chat/markdown.js";
import { makeMarkdown } from "./environment.js";

const HOSTILE = `Here is some *markdown*.

<script>window.__pwned = 'script'</script>
<img src=x onerror="window.__pwned='img'">
[click me](javascript:window.__pwned='link')
<a href="javascript:window.__pwned='a'">raw link</a>
<iframe src="javascript:window.__pwned='iframe'"></iframe>
![pixel](javascript:alert(1))
<p class="message-actions toast">spoofed</p>

\`\`\`python
print("hello")
\`\`\`
`;

function bodyOf(window, fragment) {
  const body = window.document.createElement("div");
  if (fragment) body.append(fragment);
  return body;
}

function assertHarmless(body) {
  assert.equal(body.querySelectorAll("script, iframe, object, embed, style, form, svg").length, 0, body.innerHTML);
  for (const node of body.querySelectorAll("*")) {
    for (const attribute of node.attributes) {
      assert.ok(!attribute.name.startsWith("on"), `${attribute.name} on <${node.tagName}>`);
      if (["href", "src"].includes(attribute.name)) {
        assert.ok(!/^\s*(javascript|vbscript|data):/i.test(attribute.value), attribute.value);
      }
      if (attribute.name === "class") {
        for (const name of attribute.value.split(/\s+/).filter(Boolean)) {
          assert.match(name, /^(hljs|language-|code-|copy-code|table-wrap)/, `class ${name}`);
        }
      }
    }
  }
}

// The text in chunks of `size` characters, as deltas bring it.
function* chunks(text, size) {
  for (let end = size; end < text.length + size; end += size) yield text.slice(0, Math.min(end, text.length));
}

describe("sanitising", () => {
  test("a whole answer: raw HTML is text, dangerous links and handlers are gone, code is highlighted", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window, markdown.render(HOSTILE));
    assertHarmless(body);
    assert.match(body.textContent, /<script>window.__pwned = 'script'<\/script>/, "the model's HTML is shown as text");
    assert.equal(body.querySelector("em").textContent, "markdown");
    assert.equal(body.querySelectorAll(".code-block .copy-code").length, 1);
    assert.ok(body.querySelector("code.hljs.language-python .hljs-built_in"), "highlighted");
    assert.equal(body.querySelector(".code-lang").textContent, "python");
  });

  test("links open in a new tab without the opener; task list boxes are display only", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window, markdown.render("[site](https://example.com)\n\n- [x] done\n- [ ] todo"));
    const link = body.querySelector("a");
    assert.equal(link.getAttribute("href"), "https://example.com");
    assert.equal(link.getAttribute("target"), "_blank");
    assert.equal(link.getAttribute("rel"), "noopener noreferrer");
    const boxes = body.querySelectorAll("input");
    assert.equal(boxes.length, 2);
    for (const box of boxes) assert.ok(box.hasAttribute("disabled"));
  });

  test("every update of a stream is sanitised, the open block too", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    for (const text of chunks(HOSTILE, 7)) {
      stream.update(text);
      assertHarmless(body);
    }
    stream.finish(HOSTILE);
    assertHarmless(body);
    assert.equal(window.__pwned, undefined);
  });
});

describe("streaming", () => {
  const ANSWER = [
    "# Keeping a lighthouse",
    "",
    "The keeper **trims** the wick at dusk.\nA second line of the same paragraph.",
    "",
    "- oil the gears",
    "- clean the glass",
    "",
    "  still the second item",
    "- log the hours",
    "",
    "1. first",
    "2. second",
    "",
    "Between the lists.",
    "",
    "1. loose one",
    "",
    "2. loose two",
    "",
    "* a star list",
    "",
    "```js",
    "const lamp = { lit: true };",
    "",
    "console.log(lamp);",
    "```",
    "",
    "| hour | oil |",
    "|---|---|",
    "| 1 | 3 l |",
    "",
    "> A quote",
    "that goes on lazily.",
    "",
    "Heading underlined",
    "---",
    "",
    "abc",
    "#hashtag, not a heading",
    "",
    "Last paragraph.",
  ].join("\n");

  for (const size of [1, 3, 17, 200]) {
    test(`grown ${size} characters at a time, it ends as the whole render`, () => {
      const { window, markdown } = makeMarkdown();
      const whole = bodyOf(window, markdown.render(ANSWER));
      const body = bodyOf(window);
      const stream = markdown.stream(body);
      for (const text of chunks(ANSWER, size)) stream.update(text);
      stream.finish(ANSWER);
      assert.equal(body.innerHTML, whole.innerHTML);
    });
  }

  test("finished blocks keep their nodes while the answer grows", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    stream.update("First paragraph.\n\nSecond");
    const first = body.firstElementChild;
    assert.equal(first.textContent, "First paragraph.");
    stream.update("First paragraph.\n\nSecond paragraph grows\n\nThird");
    assert.equal(body.firstElementChild, first, "the finished block was not drawn again");
    assert.equal(body.children[1].textContent, "Second paragraph grows");
    const second = body.children[1];
    stream.update("First paragraph.\n\nSecond paragraph grows\n\nThird and more");
    assert.equal(body.children[1], second);
    assert.equal(body.lastElementChild.textContent, "Third and more");
  });

  test("a fence still open is one block to the end, not highlighted until it is finished", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    stream.update("Code:\n\n```python\nprint(1)\n\nprint(2)\n");
    assert.equal(body.querySelectorAll("pre").length, 1, "the blank line inside the fence does not end it");
    assert.equal(body.querySelector("pre code").textContent, "print(1)\n\nprint(2)");
    assert.equal(body.querySelector("pre .hljs-built_in"), null, "plain while it grows");
    stream.update("Code:\n\n```python\nprint(1)\n\nprint(2)\n```\n\nAfter.");
    assert.ok(body.querySelector("pre .hljs-built_in"), "highlighted once a later block started");
  });

  test("a numbered list is open while the next line may still be its item", () => {
    const { window, markdown } = makeMarkdown();
    const whole = bodyOf(window, markdown.render("1. a\n\n2. b"));
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    for (const text of ["1. a\n\n2", "1. a\n\n2.", "1. a\n\n2. b"]) stream.update(text);
    stream.finish("1. a\n\n2. b");
    assert.equal(body.innerHTML, whole.innerHTML);
    assert.equal(body.querySelectorAll("ol").length, 1);
  });

  test("a list is open until a later block starts outside it", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    stream.update("- one\n- two\n\n");
    const list = body.querySelector("ul");
    stream.update("- one\n- two\n\n- three");
    assert.notEqual(body.querySelector("ul"), list, "still open: drawn again with its third item");
    assert.equal(body.querySelectorAll("ul").length, 1);
    assert.equal(body.querySelectorAll("li").length, 3);
  });

  test("the block before an unfinished first line stays open ('abc' then '#x' is one paragraph)", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    stream.update("abc\n#");
    stream.update("abc\n#x");
    assert.equal(body.children.length, 1);
    assert.equal(body.firstElementChild.tagName, "P");
  });

  test("a reference definition at the end links the blocks before it once the answer is complete", () => {
    const { window, markdown } = makeMarkdown();
    const text = "See [the manual][m].\n\nMore text.\n\n[m]: https://example.com/manual";
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    for (const part of chunks(text, 5)) stream.update(part);
    stream.finish(text);
    assert.equal(body.querySelector("a").getAttribute("href"), "https://example.com/manual");
  });

  test("text that was replaced rather than grown is drawn from scratch", () => {
    const { window, markdown } = makeMarkdown();
    const body = bodyOf(window);
    const stream = markdown.stream(body);
    stream.update("Alpha paragraph.\n\nBeta");
    stream.update("Gamma.");
    assert.equal(body.textContent.trim(), "Gamma.");
  });

  test("openBlockIndex: the open block is the last one, or the one before an incomplete first line", () => {
    const tokens = (...pairs) => pairs.map(([type, raw]) => ({ type, raw }));
    assert.equal(openBlockIndex([]), 0);
    assert.equal(openBlockIndex(tokens(["paragraph", "a"])), 0);
    assert.equal(openBlockIndex(tokens(["paragraph", "a"], ["space", "\n\n"], ["paragraph", "b\n"])), 2);
    assert.equal(openBlockIndex(tokens(["paragraph", "a"], ["space", "\n\n"], ["paragraph", "b"])), 2);
    assert.equal(openBlockIndex(tokens(["list", "1. a"], ["space", "\n\n"], ["paragraph", "2"])), 0);
    assert.equal(openBlockIndex(tokens(["list", "1. a"], ["space", "\n\n"], ["paragraph", "2\n"])), 2);
    assert.equal(openBlockIndex(tokens(["paragraph", "a\n"], ["heading", "#"])), 0);
    assert.equal(openBlockIndex(tokens(["heading", "# a\n"], ["paragraph", "b\n"], ["space", "\n\n"])), 1);
  });
});
