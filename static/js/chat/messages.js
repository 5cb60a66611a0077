// The messages of the branch in view (#messages), rendered from the store's state.
//
// Each record of `state.view` has one <article> (cloned from templates/chat/_message_templates.html),
// found again by the record's `key`; render(state, previous) adds, removes, moves and updates
// only what changed. A streaming answer's text is drawn at most once per animation frame,
// through the incremental markdown renderer. A long conversation shows its newest answers'
// markdown at once and the older ones' in idle time (sooner when they scroll into view).
// Buttons call the controller (controller.js); nothing here talks to the server.

import { gettext, interpolate } from "./i18n.js";
import { canWrite, isBusy } from "./store.js";

const STICKY_BOTTOM_PX = 80;
// Markdown of this many answers, from the newest, is drawn when the page opens...
const EAGER_ANSWERS = 12;
// ...the others in idle slices of about this long.
const IDLE_SLICE_MS = 8;
const LINKED_MS = 2500;
const STREAM_DRAW_MS = 100;
// From this many messages on, those out of view are not laid out (app.css, .messages.is-long).
const LONG_CONVERSATION = 60;

// keyCode 229: an IME is composing (Chinese, Japanese...): Enter picks a candidate.
export function isPlainEnter(event) {
  return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229;
}

export function growField(input) {
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight}px`; // CSS max-height caps it.
}

export function createMessagesView({ window, store, markdown, controller, ui, models }) {
  const document = window.document;
  const byId = (id) => document.getElementById(id);
  const dom = {
    scroll: byId("chat-scroll"),
    messages: byId("messages"),
    empty: byId("empty-state"),
    scrollBottom: byId("scroll-bottom"),
    tplUser: byId("tpl-message-user"),
    tplAssistant: byId("tpl-message-assistant"),
  };
  const entries = new Map(); // record key -> entry
  const byElement = new WeakMap(); // article -> entry
  const dirty = new Set(); // entries whose streaming text waits for the next frame
  let frameRequested = false;
  let lastDrawAt = -Infinity;
  let stickToBottom = true;
  const lazy = []; // entries whose markdown is drawn later, newest first
  let idleRequested = false;
  const observer =
    "IntersectionObserver" in window
      ? new window.IntersectionObserver(
          (items) => {
            for (const item of items) {
              const entry = item.isIntersecting ? byElement.get(item.target) : null;
              if (entry && entry.lazy) drawBody(entry);
            }
          },
          { root: dom.scroll, rootMargin: "800px 0px" },
        )
      : null;

  function modelLabel(name) {
    const model = (models || []).find((item) => item.name === name);
    return model ? model.label || model.name : name;
  }

  // ---- Entries --------------------------------------------------------------------------------

  function createEntry(record) {
    const template = record.role === "user" ? dom.tplUser : dom.tplAssistant;
    const el = template.content.firstElementChild.cloneNode(true);
    const part = (selector) => el.querySelector(selector);
    const entry = {
      key: record.key,
      role: record.role,
      el,
      body: part(".message-body"),
      author: part(".message-author"),
      nav: part(".branch-nav"),
      count: part(".branch-count"),
      prev: part(".branch-prev"),
      next: part(".branch-next"),
      edit: part(".message-edit"),
      editInput: part(".message-edit-input"),
      editButton: part(".message-edit-button"),
      regenerate: part(".message-regenerate"),
      resume: part(".message-continue"),
      errorBox: part(".message-error"),
      errorText: part(".message-error-text"),
      stopped: part(".badge-stopped"),
      cutOff: part(".message-cutoff"),
      model: part(".message-model"),
      startedBy: part(".message-started-by"),
      record: null,
      meta: null, // what renderRecord last wrote besides the text (metaKey)
      controls: null, // what renderControls last wrote
      drawn: null, // the content and status the body shows
      stream: null, // the incremental renderer while the answer streams
      lazy: false,
    };
    // The edit form joins the message only while it is open: a page with hundreds of hidden
    // forms costs Chromium a layout per form field when it looks them over (autofill) on load.
    if (entry.edit) entry.edit.remove();
    byElement.set(el, entry);
    return entry;
  }

  function removeEntry(entry) {
    entry.el.remove();
    entries.delete(entry.key);
    dirty.delete(entry);
    if (observer && entry.lazy) observer.unobserve(entry.el);
    entry.lazy = false;
  }

  function drawBody(entry) {
    const record = entry.record;
    dirty.delete(entry);
    if (entry.lazy) {
      entry.lazy = false;
      if (observer) observer.unobserve(entry.el);
    }
    const key = `${record.status}\u0000${record.content}`;
    if (key === entry.drawn) return;
    entry.drawn = key;
    if (record.role === "user") {
      entry.body.textContent = record.content; // Shown as typed; CSS keeps the newlines.
      return;
    }
    if (record.status === "streaming") {
      if (!entry.stream) entry.stream = markdown.stream(entry.body);
      entry.stream.update(record.content);
    } else if (entry.stream) {
      entry.stream.finish(record.content);
      entry.stream = null;
    } else {
      entry.body.replaceChildren(markdown.render(record.content));
    }
  }

  function drawDirty() {
    frameRequested = false;
    lastDrawAt = window.performance.now();
    const waiting = [...dirty];
    dirty.clear();
    for (const item of waiting) if (item.record) drawBody(item);
    followBottom();
  }

  // Streaming text is drawn on an animation frame, and at most every STREAM_DRAW_MS: the
  // page lays out and paints the answer once per draw, not once per delta.
  function scheduleBody(entry) {
    dirty.add(entry);
    if (frameRequested) return;
    frameRequested = true;
    const wait = STREAM_DRAW_MS - (window.performance.now() - lastDrawAt);
    if (wait <= 0) window.requestAnimationFrame(drawDirty);
    else window.setTimeout(() => window.requestAnimationFrame(drawDirty), wait);
  }

  // ---- One message ------------------------------------------------------------------------------

  // What the message shows besides its text: while an answer streams only its text changes,
  // and nothing else is written (each write would cost the page a style and layout pass).
  function metaKey(record, state) {
    return [record.id, record.status, record.error, record.model, record.author, record.cutOff, state.shared].join("\u0000");
  }

  function renderRecord(entry, record, state, { initial }) {
    const { el } = entry;
    entry.record = record;
    const meta = metaKey(record, state);
    const metaChanged = meta !== entry.meta;
    entry.meta = meta;
    if (metaChanged) {
      el.dataset.id = record.id ?? "";
      el.id = record.id ? `m-${record.id}` : ""; // search results link to #m-<id>
      el.dataset.status = record.status;
    }

    let drew = false;
    if (entry.lazy && initial) {
      // Its markdown is drawn in idle time (or when it scrolls into view).
    } else if (record.role === "assistant" && record.status === "streaming" && !initial) {
      scheduleBody(entry);
    } else {
      drawBody(entry);
      drew = true;
    }

    if (!metaChanged) return drew;
    if (record.role === "user") {
      entry.author.textContent = record.author;
      entry.author.hidden = !state.shared || !record.author;
      return drew;
    }
    const failed = record.status === "error";
    entry.errorBox.hidden = !failed;
    if (failed) entry.errorText.textContent = record.error || gettext("The answer could not be completed.");
    entry.stopped.hidden = record.status !== "stopped";
    entry.cutOff.hidden = !record.cutOff || record.status === "streaming";
    entry.model.textContent = record.model ? modelLabel(record.model) : "";
    const byOther = record.status === "streaming" && record.author && record.author !== state.me;
    entry.startedBy.hidden = !byOther;
    if (byOther) {
      entry.startedBy.textContent = interpolate(gettext("Started by %(name)s"), { name: record.author }, true);
    }
    return drew;
  }

  // Buttons depend on the reader's access and on whether an answer is running: refreshed for
  // every message when either changes, not only when the message does.
  function renderControls(entry, state, isLast) {
    const record = entry.record;
    const busy = isBusy(state);
    const writable = canWrite(state);
    const settled = record.id !== null && record.status !== "streaming" && record.status !== "pending";
    const key = [busy, writable, settled, isLast, record.id, record.parentId, record.siblings.join(","), record.status,
      record.cutOff, Boolean(record.content)].join("\u0000");
    if (key === entry.controls) return;
    entry.controls = key;

    const count = record.siblings.length;
    const index = record.siblings.indexOf(record.id);
    entry.nav.hidden = !settled || count < 2 || index === -1;
    if (!entry.nav.hidden) {
      const position = { index: index + 1, count };
      entry.count.textContent = interpolate(gettext("%(index)s/%(count)s"), position, true);
      entry.nav.setAttribute("aria-label", interpolate(gettext("Version %(index)s of %(count)s"), position, true));
      // Switching while an answer streams would hide it mid-sentence: wait for it.
      entry.prev.disabled = busy || index === 0;
      entry.next.disabled = busy || index === count - 1;
    }

    if (record.role === "user") {
      entry.editButton.hidden = !writable || !settled;
      entry.editButton.disabled = busy;
      return;
    }
    entry.regenerate.hidden = !writable || !settled || record.parentId === null;
    entry.regenerate.disabled = busy;
    entry.resume.hidden =
      !writable || !settled || !record.content || !(record.status === "stopped" || record.cutOff) || !isLast;
    entry.resume.disabled = busy;
  }

  function renderEditing(state, previous) {
    const before = previous ? previous.editingId : null;
    if (before === state.editingId) return;
    for (const entry of entries.values()) {
      if (entry.record.id === before && entry.role === "user") {
        entry.edit.hidden = true;
        entry.edit.remove();
        entry.el.classList.remove("is-editing");
      }
    }
    if (state.editingId === null) return;
    const entry = [...entries.values()].find((item) => item.record.id === state.editingId && item.role === "user");
    if (!entry) return;
    entry.el.querySelector(".message-footer").before(entry.edit);
    entry.editInput.value = entry.record.content;
    entry.el.classList.add("is-editing");
    entry.edit.hidden = false;
    growField(entry.editInput);
    entry.editInput.focus();
    entry.editInput.setSelectionRange(entry.editInput.value.length, entry.editInput.value.length);
  }

  // ---- The list -----------------------------------------------------------------------------------

  // Older answers of a conversation opened here: plain text now, markdown in idle time.
  function olderAnswers(view) {
    const answers = view.filter((record) => record.role === "assistant" && record.status !== "streaming");
    return new Set(answers.slice(0, Math.max(0, answers.length - EAGER_ANSWERS)).map((record) => record.key));
  }

  function defer(entry, record) {
    entry.lazy = true;
    entry.body.textContent = record.content;
    lazy.unshift(entry); // newest first: the view is walked oldest first
    if (observer) observer.observe(entry.el);
  }

  function render(state, previous = null) {
    const initial = previous === null;
    const viewChanged = initial || state.view !== previous.view;
    const sharedChanged = !initial && state.shared !== previous.shared;
    const everything =
      initial ||
      sharedChanged ||
      state.phase !== previous.phase ||
      state.access !== previous.access ||
      state.view.length !== previous.view.length;
    if (!viewChanged && !everything) {
      renderEditing(state, previous);
      return;
    }

    const keys = new Set(state.view.map((record) => record.key));
    let moved = false; // heights changed here: the bottom must be followed now, not next frame
    for (const entry of [...entries.values()]) {
      if (!keys.has(entry.key)) {
        removeEntry(entry);
        moved = true;
      }
    }

    const later = initial ? olderAnswers(state.view) : new Set();
    let cursor = dom.messages.firstElementChild;
    const fragment = initial ? document.createDocumentFragment() : null;
    state.view.forEach((record, index) => {
      let entry = entries.get(record.key);
      const created = !entry;
      if (created) {
        entry = createEntry(record);
        entries.set(record.key, entry);
        if (later.has(record.key)) defer(entry, record);
        moved = true;
      }
      const isLast = index === state.view.length - 1;
      const changed = entry.record !== record;
      if ((changed || sharedChanged) && renderRecord(entry, record, state, { initial: created })) moved = true;
      if (changed || everything || isLast) renderControls(entry, state, isLast);
      if (fragment) {
        fragment.append(entry.el);
      } else if (entry.el !== cursor) {
        dom.messages.insertBefore(entry.el, cursor);
        moved = true;
      } else {
        cursor = cursor.nextElementSibling;
      }
    });
    if (fragment) dom.messages.append(fragment);
    if (later.size) requestIdle();
    updateEmptyState(state);
    renderEditing(state, previous);
    if (moved) followBottom();
  }

  function requestIdle() {
    if (idleRequested || !lazy.length) return;
    idleRequested = true;
    const run = (deadline) => {
      idleRequested = false;
      const started = window.performance.now();
      const timeLeft = () =>
        deadline && typeof deadline.timeRemaining === "function"
          ? deadline.timeRemaining() > 1
          : window.performance.now() - started < IDLE_SLICE_MS;
      while (lazy.length && timeLeft()) {
        const entry = lazy.shift();
        if (entry.lazy && entries.get(entry.key) === entry) drawBody(entry);
      }
      if (lazy.length) requestIdle();
      else followBottom();
    };
    if (typeof window.requestIdleCallback === "function") window.requestIdleCallback(run, { timeout: 500 });
    else window.setTimeout(() => run(null), 16);
  }

  function updateEmptyState(state) {
    const empty = state.view.length === 0;
    if (dom.empty.hidden === empty) dom.empty.hidden = !empty;
    const suggestions = dom.empty.querySelector(".suggestions");
    if (suggestions && suggestions.hidden === canWrite(state)) suggestions.hidden = !canWrite(state);
    // Long conversations only lay out and paint what is in view (app.css).
    const long = state.view.length > LONG_CONVERSATION;
    if (dom.messages.classList.contains("is-long") !== long) dom.messages.classList.toggle("is-long", long);
  }

  // ---- Scrolling: follow the answer while the reader is at the bottom ----------------------------

  function distanceFromBottom() {
    return dom.scroll.scrollHeight - dom.scroll.scrollTop - dom.scroll.clientHeight;
  }

  function updateScrollButton() {
    dom.scrollBottom.hidden = distanceFromBottom() <= STICKY_BOTTOM_PX;
  }

  function followBottom() {
    if (stickToBottom) dom.scroll.scrollTop = dom.scroll.scrollHeight;
    updateScrollButton();
  }

  function scrollToBottom() {
    stickToBottom = true;
    dom.scroll.scrollTop = dom.scroll.scrollHeight;
    updateScrollButton();
  }

  dom.scroll.addEventListener(
    "scroll",
    () => {
      stickToBottom = distanceFromBottom() <= STICKY_BOTTOM_PX;
      updateScrollButton();
    },
    { passive: true },
  );
  dom.scrollBottom.addEventListener("click", () => {
    dom.scroll.scrollTo({ top: dom.scroll.scrollHeight, behavior: "smooth" });
    stickToBottom = true;
  });

  // ---- What the reader does ---------------------------------------------------------------------

  function entryOf(node) {
    const article = node && node.closest(".message");
    return article ? byElement.get(article) || null : null;
  }

  function entryForId(id) {
    return [...entries.values()].find((entry) => entry.record.id === id) || null;
  }

  function cancelEdit(entry) {
    store.dispatch({ type: "edit-close" });
    entry.editButton.focus();
  }

  function saveEdit(entry) {
    const content = entry.editInput.value.trim();
    if (!content) {
      entry.editInput.focus();
      return;
    }
    controller.saveEdit(entry.record, content);
  }

  async function showSibling(entry, step) {
    const shown = await controller.showSibling(entry.record, step);
    if (shown === null) return;
    // Keep the keyboard where it was, on the same control of the version now shown.
    const now = entryForId(shown);
    if (!now) return;
    const button = step < 0 ? now.prev : now.next;
    const fallback = step < 0 ? now.next : now.prev;
    (button && !button.disabled ? button : fallback).focus();
  }

  async function copy(button, text, label) {
    if (await ui.copyText(text)) ui.flashCopied(button, label);
    else ui.toast(gettext("Copying is blocked by the browser. Select the text instead."));
  }

  dom.messages.addEventListener("click", (event) => {
    const codeButton = event.target.closest(".copy-code");
    if (codeButton) {
      copy(codeButton, codeButton.closest(".code-block").querySelector("pre code").textContent, null);
      return;
    }
    const button = event.target.closest("button");
    const entry = button && entryOf(button);
    if (!entry) return;
    const record = entry.record;
    if (button.classList.contains("message-copy")) {
      copy(button, record.content || entry.body.innerText, button.querySelector(".message-action-label"));
    } else if (button.classList.contains("message-edit-button")) {
      store.dispatch({ type: "edit-open", id: record.id });
    } else if (button.classList.contains("message-edit-cancel")) {
      cancelEdit(entry);
    } else if (button.classList.contains("message-regenerate")) {
      controller.regenerate(record);
    } else if (button.classList.contains("message-continue")) {
      controller.continueAnswer(record);
    } else if (button.classList.contains("branch-prev")) {
      showSibling(entry, -1);
    } else if (button.classList.contains("branch-next")) {
      showSibling(entry, 1);
    }
  });

  dom.messages.addEventListener("submit", (event) => {
    const form = event.target.closest(".message-edit");
    if (!form) return;
    event.preventDefault();
    const entry = entryOf(form);
    if (entry) saveEdit(entry);
  });

  dom.messages.addEventListener("input", (event) => {
    if (event.target.classList.contains("message-edit-input")) growField(event.target);
  });

  dom.messages.addEventListener("keydown", (event) => {
    if (!event.target.classList.contains("message-edit-input")) return;
    const entry = entryOf(event.target);
    if (!entry) return;
    if (event.key === "Escape") {
      event.preventDefault();
      cancelEdit(entry);
    } else if (isPlainEnter(event)) {
      event.preventDefault();
      saveEdit(entry);
    }
  });

  // The message a link pointed at (/c/<id>/#m-<message id>): into view, marked for a moment.
  function reveal(id) {
    const entry = entryForId(id);
    if (!entry) return false;
    if (entry.lazy) drawBody(entry);
    stickToBottom = false;
    entry.el.scrollIntoView({ block: "center" });
    entry.el.classList.add("is-linked");
    window.setTimeout(() => entry.el.classList.remove("is-linked"), LINKED_MS);
    return true;
  }

  // The first render: everything at once, in one insertion, then the bottom.
  function mount(state) {
    render(state, null);
    scrollToBottom();
  }

  return { mount, render, scrollToBottom, reveal };
}
