// What the chat modules get in the browser, for node: a jsdom window and the same versions of
// marked, DOMPurify and highlight.js that static/vendor/ holds (package.json pins both).
import createDOMPurify from "dompurify";
import hljs from "@highlightjs/cdn-assets/es/highlight.min.js";
import { JSDOM } from "jsdom";
import * as marked from "marked";

import { createMarkdown } from "../../static/js/chat/markdown.js";

export function makeWindow(html = "<!DOCTYPE html><body></body>") {
  return new JSDOM(html, { pretendToBeVisual: true }).window;
}

export function makeMarkdown(window = makeWindow()) {
  return { window, markdown: createMarkdown({ marked, DOMPurify: createDOMPurify, hljs, window }) };
}
