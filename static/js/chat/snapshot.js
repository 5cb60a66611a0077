// The snapshot page a share link opens (templates/chat/share_link.html): the answers'
// markdown and their code blocks' Copy buttons. Loaded after the vendored marked, DOMPurify
// and highlight.js.

import { createMarkdown } from "./markdown.js";
import { renderSnapshot } from "./share.js";
import { createUi } from "./ui.js";

export function start(window) {
  const markdown = createMarkdown({ marked: window.marked, DOMPurify: window.DOMPurify, hljs: window.hljs, window });
  renderSnapshot({ window, markdown, ui: createUi(window) });
}

if (typeof window !== "undefined" && window.document && window.document.body.classList.contains("page-share")) {
  start(window);
}
