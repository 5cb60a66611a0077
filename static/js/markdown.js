// Markdown rendering for model answers: marked -> DOMPurify -> DOM decoration.
//
// Model text is untrusted. Raw HTML in it is shown as text (as chat apps do), and the whole
// output still goes through DOMPurify, so a bug in either layer alone cannot run script.
// Exposes window.ChatMarkdown.render(text, {streaming}) -> DocumentFragment.
(function () {
  "use strict";

  const gettext = window.gettext || ((text) => text);

  // Highlighting is the expensive part of a re-render, and while an answer streams every
  // finished code block is re-rendered on each frame with the same text: cache by content.
  const HIGHLIGHT_CACHE_LIMIT = 200;
  const highlightCache = new Map();
  // Auto-detection tries every language; skip it for a block that is still growing.
  const AUTO_DETECT_LIMIT = 20000;

  function escapeHtml(text) {
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

  function highlight(code, language, streaming) {
    const hljs = window.hljs;
    const known = hljs && language && hljs.getLanguage(language);
    const autodetect = hljs && !language && !streaming && code.length <= AUTO_DETECT_LIMIT;
    if (!known && !autodetect) return { html: escapeHtml(code), language };

    const key = `${language}\u0000${code}`;
    const cached = highlightCache.get(key);
    if (cached) return cached;
    let result;
    try {
      const output = known
        ? hljs.highlight(code, { language, ignoreIllegals: true })
        : hljs.highlightAuto(code);
      result = { html: output.value, language: language || output.language || "" };
    } catch (error) {
      result = { html: escapeHtml(code), language };
    }
    if (highlightCache.size >= HIGHLIGHT_CACHE_LIMIT) {
      highlightCache.delete(highlightCache.keys().next().value);
    }
    highlightCache.set(key, result);
    return result;
  }

  let streamingPass = false; // marked renderers have no per-call options: read this instead.

  const parser = new window.marked.Marked({
    gfm: true,
    breaks: true,
    renderer: {
      code(token) {
        const language = languageOf(token.lang);
        const { html, language: detected } = highlight(token.text, language, streamingPass);
        const label = detected ? ` data-language="${escapeHtml(detected)}"` : "";
        const cls = detected ? ` language-${escapeHtml(detected)}` : "";
        return `<pre${label}><code class="hljs${cls}">${html}</code></pre>\n`;
      },
      // Raw HTML written by the model is displayed, never interpreted.
      html(token) {
        return escapeHtml(token.text);
      },
    },
  });

  const SAFE_CLASS = /^(hljs(-[\w-]+)?|language-[\w#+.-]+|[\w-]+_)$/;

  const purifier = window.DOMPurify(window);
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
    for (const link of fragment.querySelectorAll("a:not([href])")) {
      link.replaceWith(...link.childNodes);
    }
    for (const image of fragment.querySelectorAll("img:not([src])")) {
      image.replaceWith(image.getAttribute("alt") || "");
    }
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

  function render(text, options = {}) {
    streamingPass = Boolean(options.streaming);
    let html;
    try {
      html = parser.parse(text || "");
    } catch (error) {
      html = `<p>${escapeHtml(text || "")}</p>`;
    } finally {
      streamingPass = false;
    }
    return decorate(purifier.sanitize(html, PURIFY_CONFIG));
  }

  window.ChatMarkdown = { render, escapeHtml };
})();
