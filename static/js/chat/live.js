// What a screen reader hears: short notices in #sr-status ("Answer complete."), and the
// streaming answer itself in #sr-answer (aria-live="polite"), a few sentences at a time, never
// token by token. Both regions are in templates/chat/chat.html.

import { Phase, recordById } from "./store.js";

// At most one update of the answer region this often: a fast model finishes several sentences
// a second, and a polite region that changes constantly is read out of order or not at all.
const SENTENCE_INTERVAL_MS = 1500;
// The region keeps this many recent pieces; older ones are removed (removals are not read).
const KEEP_PIECES = 6;

// The end of the last complete sentence in text[from:], or -1: a sentence ends at ., !, ?, …
// (or their CJK forms) followed by white space, or at a blank line.
export function lastSentenceEnd(text, from = 0) {
  const pattern = /[.!?…。！？]["'”’)\]]*(?=\s)|\n\s*\n|[。！？]/g;
  pattern.lastIndex = from;
  let end = -1;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) end = match.index + match[0].length;
  return end;
}

// Markdown source as words: no markers, no link addresses, fences and table rules dropped.
export function speakable(markdown) {
  return markdown
    .replace(/^\s*(```|~~~).*$/gm, " ")
    .replace(/^\s*\|?[\s:|-]*-{3,}[\s:|-]*$/gm, " ")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/^\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+/gm, "")
    .replace(/[*_~`|]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

export function createLive(window) {
  const document = window.document;
  const status = () => document.getElementById("sr-status");
  const answer = () => document.getElementById("sr-answer");
  const tracked = { id: null, spoken: 0, timer: null, lastAt: -Infinity, text: "" };

  function announce(message) {
    const region = status();
    if (!region) return;
    region.textContent = "";
    // A change of text is what screen readers announce: set it on the next frame.
    window.requestAnimationFrame(() => {
      region.textContent = message;
    });
  }

  function say(text) {
    const region = answer();
    const words = speakable(text);
    if (!region || !words) return;
    const piece = document.createElement("p");
    piece.textContent = words;
    region.append(piece);
    while (region.childElementCount > KEEP_PIECES) region.firstElementChild.remove();
  }

  // Say the finished sentences not said yet; `all`: the rest too (the answer ended).
  function flush(all = false) {
    window.clearTimeout(tracked.timer);
    tracked.timer = null;
    const end = all ? tracked.text.length : lastSentenceEnd(tracked.text, tracked.spoken);
    if (end <= tracked.spoken) return;
    say(tracked.text.slice(tracked.spoken, end));
    tracked.spoken = end;
    tracked.lastAt = window.performance.now();
  }

  function follow(id, text, { fresh }) {
    if (tracked.id !== id) {
      flush(true);
      // An answer already under way when we joined (page load, snapshot, continue): read on
      // from here, not from its start.
      tracked.id = id;
      tracked.spoken = fresh ? 0 : text.length;
    }
    tracked.text = text;
    if (tracked.timer !== null) return;
    const wait = SENTENCE_INTERVAL_MS - (window.performance.now() - tracked.lastAt);
    if (wait <= 0) flush();
    else tracked.timer = window.setTimeout(() => flush(), wait);
  }

  // Called after every state change.
  function render(state, previous) {
    const id = state.phase === Phase.IDLE ? null : state.generatingId;
    const record = id === null ? null : recordById(state, id);
    if (record && record.status === "streaming") {
      const before = previous ? recordById(previous, id) : null;
      follow(id, record.content, { fresh: !before || before.content.length === 0 });
      return;
    }
    if (tracked.id !== null) {
      const ended = recordById(state, tracked.id);
      if (ended && ended.status !== "streaming") tracked.text = ended.content;
      flush(true);
      tracked.id = null;
    }
  }

  return { announce, render };
}
