// Markdown for model answers: marked -> DOMPurify -> DOM decoration, whole or as it streams.
//
// Model text is untrusted. Raw HTML in it is shown as text (as chat apps do), and every piece
// of output still goes through DOMPurify before it enters the document, so a bug in either
// layer alone cannot run script.
//
// createMarkdown({marked, DOMPurify, hljs, window}) gets the libraries passed in (the page's
// vendored globals; node's packages and a jsdom window in tests/js), so importing this module
// touches nothing. It returns:
//   render(text) -> DocumentFragment: a whole answer;
//   stream(body) -> {update(text), finish(text)}: an answer that grows. Finished blocks stay
//     rendered DOM; only the open block at the end is parsed and sanitised again on each
//     update, so a long answer costs the same per update as a short one.

import { gettext } from "./i18n.js";

// Highlighting is the expensive part of rendering a code block: cache by content.
const HIGHLIGHT_CACHE_LIMIT = 200;
// Auto-detection tries every language: not for huge blocks.
const AUTO_DETECT_LIMIT = 20000;
// A reference definition ("[x]: https://...") changes links anywhere in the text, also in
// blocks rendered before it arrived: when a finished answer has one, it is rendered again whole.
const REFERENCE_DEFINITION = /^ {0,3}\[[^\]\n]+\]:/m;

export function escapeHtml(text) {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function languageOf(info) {
  const word = (info || "").trim().split(/\s+/)[0].toLowerCase();
  return /^[\w#+.-]{1,32}$/.test(word) ? word : "";
}

const SAFE_CLASS = /^(hljs(-[\w-]+)?|language-[\w#+.-]+|[\w-]+_)$/;

const PURIFY_CONFIG = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: [
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form",
    "button", "textarea", "select", "option", "link", "meta", "base", "svg", "math",
    "template", "dialog",
  ],
  FORBID_ATTR: ["style", "id", "name", "srcset", "action", "formaction"],
  // http(s), mailto, tel, in-page anchors and relative paths; no javascript:, vbscript:, data:
  // (data: images are still allowed on <img> by DOMPurify's DATA_URI_TAGS rule).
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto|tel):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
};

// The block at the returned index and everything after it may still change; the blocks
// before it are finished. A block is finished once a later block has started (a fence still
// open is one block to the end of the text), provided that later block's first line cannot
// still join it: "abc\n#" lexes as a paragraph and a heading, but "abc\n#x" is one paragraph,
// and "1. a\n\n2" is a list and a paragraph until "2. b" makes it one list. So when the last
// block's first line is incomplete, the block before it stays open too, unless a blank line
// separates them and it is not a list.
export function openBlockIndex(tokens) {
  const previousBlock = (index) => {
    let at = index - 1;
    while (at >= 0 && tokens[at].type === "space") at -= 1;
    return at;
  };
  let last = tokens.length - 1;
  while (last >= 0 && tokens[last].type === "space") last -= 1;
  if (last <= 0) return 0;
  if (!tokens[last].raw.includes("\n")) {
    const before = previousBlock(last);
    const blankLine = before >= 0 && before < last - 1;
    if (before >= 0 && (!blankLine || tokens[before].type === "list")) last = before;
  }
  return Math.max(0, last);
}

export function createMarkdown({ marked, DOMPurify, hljs = null, window }) {
  const document = window.document;
  const highlightCache = new Map();
  let plainCode = false; // marked renderers have no per-call options: read this instead.

  function highlight(code, language) {
    const known = hljs && language && hljs.getLanguage(language);
    const autodetect = hljs && !language && code.length <= AUTO_DETECT_LIMIT;
    if (plainCode || (!known && !autodetect)) return { html: escapeHtml(code), language };
    const key = `${language}\u0000${code}`;
    const cached = highlightCache.get(key);
    if (cached) return cached;
    let result;
    try {
      const output = known ? hljs.highlight(code, { language, ignoreIllegals: true }) : hljs.highlightAuto(code);
      result = { html: output.value, language: language || output.language || "" };
    } catch {
      result = { html: escapeHtml(code), language };
    }
    if (highlightCache.size >= HIGHLIGHT_CACHE_LIMIT) highlightCache.delete(highlightCache.keys().next().value);
    highlightCache.set(key, result);
    return result;
  }

  const parser = new marked.Marked({
    gfm: true,
    breaks: true,
    renderer: {
      code(token) {
        const { html, language } = highlight(token.text, languageOf(token.lang));
        const label = language ? ` data-language="${escapeHtml(language)}"` : "";
        const cls = language ? ` language-${escapeHtml(language)}` : "";
        return `<pre${label}><code class="hljs${cls}">${html}</code></pre>\n`;
      },
      // Raw HTML written by the model is displayed, never interpreted.
      html(token) {
        return escapeHtml(token.text);
      },
    },
  });

  const purifier = DOMPurify(window);
  purifier.addHook("uponSanitizeAttribute", (node, data) => {
    if (data.attrName === "class") {
      // Only the classes our renderer and highlight.js emit: no spoofing of app UI classes.
      data.attrValue = data.attrValue
        .split(/\s+/)
        .filter((name) => SAFE_CLASS.test(name))
        .join(" ");
    }
  });
  purifier.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
    if (node.tagName === "INPUT") {
      // Task-list checkboxes are the only inputs markdown produces: display only.
      if (node.getAttribute("type") !== "checkbox") node.remove();
      else node.setAttribute("disabled", "");
    }
  });

  function buildCodeHeader(pre) {
    const header = document.createElement("div");
    header.className = "code-header";
    const label = document.createElement("span");
    label.className = "code-lang";
    label.textContent = pre.dataset.language || gettext("code");
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-code";
    copy.textContent = gettext("Copy");
    copy.setAttribute("aria-label", gettext("Copy code"));
    header.append(label, copy);
    return header;
  }

  // Wrap code blocks (header + copy button) and tables (horizontal scroll on phones); show
  // links and images whose address was removed as their plain text.
  function decorate(fragment) {
    for (const link of fragment.querySelectorAll("a:not([href])")) link.replaceWith(...link.childNodes);
    for (const image of fragment.querySelectorAll("img:not([src])")) image.replaceWith(image.getAttribute("alt") || "");
    for (const pre of fragment.querySelectorAll("pre")) {
      const block = document.createElement("div");
      block.className = "code-block";
      pre.replaceWith(block);
      block.append(buildCodeHeader(pre), pre);
    }
    for (const table of fragment.querySelectorAll("table")) {
      const wrap = document.createElement("div");
      wrap.className = "table-wrap";
      table.replaceWith(wrap);
      wrap.append(table);
    }
    return fragment;
  }

  // Markdown source -> sanitised, decorated fragment. `plain`: code blocks are not highlighted
  // (the open block of a stream: highlighted once it is finished).
  function toFragment(text, { plain = false } = {}) {
    plainCode = plain;
    let html;
    try {
      html = parser.parse(text || "");
    } catch {
      html = `<p>${escapeHtml(text || "")}</p>`;
    } finally {
      plainCode = false;
    }
    return decorate(purifier.sanitize(html, PURIFY_CONFIG));
  }

  function render(text) {
    return toFragment(text);
  }

  // One streaming answer in `body` (its .message-body). The body holds the finished blocks'
  // nodes, then the open tail's nodes, which are replaced on every update.
  function stream(body) {
    let source = ""; // the normalised text the body shows
    let committed = 0; // source[0:committed] is rendered as finished blocks
    let tail = []; // the nodes of the open part
    let definitions = false;
    body.replaceChildren();

    function reset() {
      body.replaceChildren();
      source = "";
      committed = 0;
      tail = [];
      definitions = false;
    }

    function showTail(text) {
      for (const node of tail) node.remove();
      const fragment = text ? toFragment(text, { plain: true }) : null;
      tail = fragment ? [...fragment.childNodes] : [];
      if (fragment) body.append(fragment);
    }

    function update(raw, { final = false } = {}) {
      // marked reads "\r\n" as "\n": so must the offsets.
      const text = (raw || "").replace(/\r\n?/g, "\n");
      if (!text.startsWith(source.slice(0, committed))) reset(); // replaced, not grown
      source = text;
      const open = text.slice(committed);
      let finished = open.length;
      if (!final) {
        const tokens = parser.lexer(open);
        const index = openBlockIndex(tokens);
        finished = 0;
        for (let i = 0; i < index; i += 1) finished += tokens[i].raw.length;
      }
      if (finished > 0) {
        const block = open.slice(0, finished);
        if (REFERENCE_DEFINITION.test(block)) definitions = true;
        for (const node of tail) node.remove();
        tail = [];
        body.append(toFragment(block));
        committed += finished;
      }
      showTail(text.slice(committed));
    }

    return {
      update: (text) => update(text),
      // The answer is complete: its last block is finished too (and highlighted).
      finish(text) {
        const normal = (text || "").replace(/\r\n?/g, "\n");
        if (definitions || REFERENCE_DEFINITION.test(normal.slice(committed)) || !normal.startsWith(source.slice(0, committed))) {
          body.replaceChildren(toFragment(normal));
          source = normal;
          committed = normal.length;
          tail = [];
          return;
        }
        update(normal, { final: true });
      },
    };
  }

  return { render, stream, escapeHtml };
}
