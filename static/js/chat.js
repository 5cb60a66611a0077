// The chat page: sidebar, messages, composer, and the conversation socket.
//
// Needs (loaded before, all deferred): the Django JavaScript catalog (gettext, interpolate),
// marked, DOMPurify, highlight.js, markdown.js (ChatMarkdown) and socket.js (ConversationSocket).
// Page data comes from the #page-data json_script; the protocol is in docs/ARCHITECTURE.md.
//
// The view shows one branch of the conversation's tree (‹ 2/3 › switches), with edit,
// regenerate, continue and copy on its messages, and follows what anyone with access does.
// What other scripts hear, as window events: "chat:title" {id, title}; "chat:conversation"
// (every conversation frame, plus a local {action: "created"} for a chat started on this page);
// "chat:project" (every project frame); "chat:message" {id, message} (a new message is shown);
// "chat:share-open" {id} (the Share button; share.js opens its dialog).
(function () {
  "use strict";

  const gettext = window.gettext || ((text) => text);
  const interpolate =
    window.interpolate ||
    ((format, values, named) =>
      named
        ? format.replace(/%\((\w+)\)s/g, (match, key) => String(values[key]))
        : format.replace(/%s/g, () => String(values.shift())));

  const STORAGE_MODEL = "chat.model";
  // A message for the next page (the conversation was deleted, access withdrawn).
  const STORAGE_FLASH = "chat.flash";
  const LEAVE_FALLBACK_MS = 2000;
  const STICKY_BOTTOM_PX = 80;
  const TOAST_MS = 6000;
  const RESYNC_DELAY_MS = 300;

  const byId = (id) => document.getElementById(id);
  const dom = {
    sidebar: byId("sidebar"),
    sidebarToggle: byId("sidebar-toggle"),
    sidebarClose: byId("sidebar-close"),
    backdrop: byId("sidebar-backdrop"),
    list: byId("conversation-list"),
    listEmpty: byId("conversation-list-empty"),
    modelSelect: byId("model-select"),
    title: byId("chat-title"),
    connection: byId("connection-status"),
    scroll: byId("chat-scroll"),
    empty: byId("empty-state"),
    messages: byId("messages"),
    composer: byId("composer"),
    input: byId("composer-input"),
    send: byId("send-button"),
    stop: byId("stop-button"),
    scrollBottom: byId("scroll-bottom"),
    toasts: byId("toasts"),
    srStatus: byId("sr-status"),
    dialog: byId("confirm-dialog"),
    dialogText: byId("confirm-dialog-text"),
    tplUser: byId("tpl-message-user"),
    tplAssistant: byId("tpl-message-assistant"),
    readOnly: byId("read-only-note"),
    hint: byId("composer-hint"),
    share: byId("share-button"),
    crumb: byId("project-crumb"),
    crumbName: document.querySelector("#project-crumb .chat-crumb-name"),
    crumbSeparator: document.querySelector(".chat-crumb-separator"),
    tplConversation: byId("tpl-conversation-item"),
  };

  const page = JSON.parse(byId("page-data").textContent);
  const BRAND = document.title.split(" · ").pop();

  const state = {
    conversationId: page.conversation_id || null,
    messages: new Map(), // id -> message record (see createRecord)
    pending: null, // the user's message shown before the server confirmed it
    generatingId: page.generating_id ?? null,
    sending: false, // between pressing Send and the server's answer placeholder (or refusal)
    stopRequested: false,
    socket: null,
    stickToBottom: true,
    // "read" | "write" | "owner" (page data, then the socket's "access" frames); "none": leaving.
    access: page.access || "owner",
    me: page.me || "",
    // Show authors when others may write here: not your own chat, or a project's.
    shared: Boolean(page.conversation && (page.owner !== page.me || page.conversation.project)),
    project: (page.conversation && page.conversation.project) || null,
    editing: null, // the user message whose edit form is open
    pendingIsEdit: false,
    viewLoading: null, // a promise while the view is being replaced from the server
    held: [], // stream frames that arrived meanwhile
    leaving: false,
    leaveTimer: null,
  };

  // ---------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (error) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (error) {
      // Preferences are a convenience: ignore disabled storage.
    }
  }

  function toast(message, kind = "error") {
    const item = document.createElement("div");
    item.className = `toast toast-${kind}`;
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    const text = document.createElement("span");
    text.className = "toast-text";
    text.textContent = message;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", gettext("Dismiss"));
    close.textContent = "\u00d7";
    close.addEventListener("click", () => item.remove());
    item.append(text, close);
    dom.toasts.append(item);
    setTimeout(() => item.remove(), TOAST_MS);
  }

  function announce(message) {
    dom.srStatus.textContent = "";
    // A change of text is what screen readers announce: set it on the next frame.
    requestAnimationFrame(() => {
      dom.srStatus.textContent = message;
    });
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (error) {
        // Fall through to the legacy path (permissions, focus).
      }
    }
    // Plain-HTTP installs on a LAN are not a secure context: navigator.clipboard is missing.
    const helper = document.createElement("textarea");
    helper.value = text;
    helper.setAttribute("readonly", "");
    helper.className = "clipboard-helper";
    document.body.append(helper);
    helper.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    helper.remove();
    return copied;
  }

  function flashCopied(button, label) {
    const target = label || button;
    const original = target.textContent;
    target.textContent = gettext("Copied!");
    button.classList.add("is-copied");
    setTimeout(() => {
      target.textContent = original;
      button.classList.remove("is-copied");
    }, 1500);
  }

  // ---------------------------------------------------------------------------------------
  // HTTP API (same origin, CSRF header, JSON errors shown as toasts)
  // ---------------------------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    // CSRF_COOKIE_HTTPONLY deployments: the logout form carries the token too.
    const field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-CSRFToken": csrfToken(),
          "Content-Type": "application/json",
          Accept: "application/json",
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      toast(gettext("Cannot reach the server. Check your connection and try again."));
      return { ok: false, status: 0, data: null };
    }
    let data = null;
    const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
    if (isJson) {
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
    }
    // An expired session answers with a redirect to the login page, not with JSON.
    if (response.redirected && !isJson) {
      toast(gettext("Your session has expired. Reload the page and sign in again."));
      return { ok: false, status: response.status, data: null };
    }
    if (!response.ok) {
      let message = data && data.error;
      if (!message && response.status === 403) {
        message = gettext("This action was refused. Reload the page and try again.");
      }
      if (!message) {
        message = interpolate(gettext("Something went wrong (error %s). Try again."), [
          response.status,
        ]);
      }
      toast(message);
    }
    return { ok: response.ok, status: response.status, data };
  }

  // ---------------------------------------------------------------------------------------
  // Messages: records, DOM, rendering (at most once per animation frame while streaming)
  //
  // The view is one branch of the conversation's tree: #messages holds it in order, each
  // message a child of the one before; state.messages indexes the records shown by id.
  // ---------------------------------------------------------------------------------------

  const recordOf = new WeakMap(); // article element -> its record

  function siblingsOf(data) {
    if (Array.isArray(data.siblings) && data.siblings.length) return data.siblings.map(Number);
    return data.id === undefined || data.id === null ? [] : [data.id];
  }

  function createRecord(data) {
    const role = data.role === "user" ? "user" : "assistant";
    const template = role === "user" ? dom.tplUser : dom.tplAssistant;
    const el = template.content.firstElementChild.cloneNode(true);
    const record = {
      id: data.id ?? null,
      parentId: data.parent_id ?? null,
      role,
      content: data.content || "",
      status: data.status || "complete",
      error: data.error || "",
      model: data.model || "",
      author: data.author || "",
      cutOff: Boolean(data.cut_off),
      siblings: siblingsOf(data),
      el,
      body: el.querySelector(".message-body"),
      renderedKey: null,
    };
    recordOf.set(el, record);
    return record;
  }

  // Take what the server says about a message we show (a repeated frame, a resync).
  function updateRecord(record, data, { siblings = true } = {}) {
    const status = data.status || record.status;
    // Streaming text lives in the frames, not in the database: never shorten it from there.
    const stale =
      record.status === "streaming" &&
      status === "streaming" &&
      (data.content || "").length < record.content.length;
    if (typeof data.content === "string" && !stale) record.content = data.content;
    record.status = status;
    if ("error" in data) record.error = data.error || "";
    if (data.model) record.model = data.model;
    if (data.author) record.author = data.author;
    if ("cut_off" in data) record.cutOff = Boolean(data.cut_off);
    if ("parent_id" in data) record.parentId = data.parent_id ?? null;
    if (siblings && Array.isArray(data.siblings) && data.siblings.length) {
      record.siblings = siblingsOf(data);
    }
    noteAuthor(record.author);
  }

  function modelLabel(name) {
    const model = (page.models || []).find((item) => item.name === name);
    return model ? model.label || model.name : name;
  }

  function viewRecords() {
    return [...dom.messages.children].map((el) => recordOf.get(el)).filter(Boolean);
  }

  function isLastInView(record) {
    return record.el.parentNode === dom.messages && record.el.nextElementSibling === null;
  }

  // Server messages go before the pending one: it is always the newest thing in the view.
  function addMessage(data) {
    const record = createRecord(data);
    if (record.id !== null) state.messages.set(record.id, record);
    const before = state.pending && state.pending.el.parentNode === dom.messages ? state.pending.el : null;
    dom.messages.insertBefore(record.el, before);
    noteAuthor(record.author);
    renderNow(record);
    updateEmptyState();
    return record;
  }

  function removeRecord(record) {
    record.el.remove();
    if (record.id !== null && state.messages.get(record.id) === record) state.messages.delete(record.id);
    dirty.delete(record);
    if (state.editing === record) state.editing = null;
    updateEmptyState();
  }

  // A new message replaces everything after its parent in the view: that is how an edit or a
  // new answer shows up, whoever made it. False when the parent is not shown (another branch).
  function dropAfter(parentId) {
    const records = viewRecords();
    let index = -1;
    if (parentId !== null && parentId !== undefined) {
      index = records.findIndex((record) => record.id === parentId);
      if (index === -1) return false;
    }
    for (const record of records.slice(index + 1)) {
      if (record !== state.pending) removeRecord(record);
    }
    return true;
  }

  // Show this branch instead of the one in view (a branch switch, a resync).
  function showMessages(messages) {
    const before = new Map(state.messages);
    for (const record of viewRecords()) {
      if (record !== state.pending) removeRecord(record);
    }
    for (const message of messages) {
      const record = addMessage(message);
      const old = before.get(record.id);
      if (old && old.status === "streaming" && record.status === "streaming" && old.content.length > record.content.length) {
        record.content = old.content;
        renderNow(record);
      }
    }
    updateEmptyState();
  }

  // Someone else wrote here (or it is not your own chat): show who wrote each message.
  function noteAuthor(author) {
    if (state.shared || !author || author === state.me) return;
    state.shared = true;
    for (const record of viewRecords()) scheduleRender(record);
  }

  function canWrite() {
    return state.access === "write" || state.access === "owner";
  }

  function renderRecord(record) {
    const { el } = record;
    el.dataset.id = record.id ?? "";
    el.id = record.id ? `m-${record.id}` : ""; // search results link to #m-<id>
    el.dataset.status = record.status;

    const key = `${record.status}\u0000${record.content}`;
    if (key !== record.renderedKey) {
      record.renderedKey = key;
      if (record.role === "assistant") {
        const streaming = record.status === "streaming";
        record.body.replaceChildren(window.ChatMarkdown.render(record.content, { streaming }));
      } else {
        record.body.textContent = record.content; // Shown as typed; CSS keeps the newlines.
      }
    }
    renderControls(record);

    if (record.role !== "assistant") {
      const author = el.querySelector(".message-author");
      author.textContent = record.author;
      author.hidden = !state.shared || !record.author;
      return;
    }
    const errorBox = el.querySelector(".message-error");
    const failed = record.status === "error";
    errorBox.hidden = !failed;
    if (failed) {
      el.querySelector(".message-error-text").textContent =
        record.error || gettext("The answer could not be completed.");
    }
    el.querySelector(".badge-stopped").hidden = record.status !== "stopped";
    el.querySelector(".message-cutoff").hidden = !record.cutOff || record.status === "streaming";
    el.querySelector(".message-model").textContent = record.model ? modelLabel(record.model) : "";
    const startedBy = el.querySelector(".message-started-by");
    const byOther = record.status === "streaming" && record.author && record.author !== state.me;
    startedBy.hidden = !byOther;
    if (byOther) {
      startedBy.textContent = interpolate(gettext("Started by %(name)s"), { name: record.author }, true);
    }
  }

  // Buttons depend on the reader's access and on whether an answer is running: refreshed for
  // every message when either changes (refreshControls), not only when the message does.
  function renderControls(record) {
    const { el } = record;
    const busy = isBusy();
    const writable = canWrite();
    const settled = record.id !== null && record.status !== "streaming" && record.status !== "pending";

    const nav = el.querySelector(".branch-nav");
    const count = record.siblings.length;
    const index = record.siblings.indexOf(record.id);
    nav.hidden = !settled || count < 2 || index === -1;
    if (!nav.hidden) {
      const position = { index: index + 1, count };
      nav.querySelector(".branch-count").textContent = interpolate(gettext("%(index)s/%(count)s"), position, true);
      nav.setAttribute("aria-label", interpolate(gettext("Version %(index)s of %(count)s"), position, true));
      // Switching while an answer streams would hide it mid-sentence: wait for it.
      nav.querySelector(".branch-prev").disabled = busy || index === 0;
      nav.querySelector(".branch-next").disabled = busy || index === count - 1;
    }

    if (record.role === "user") {
      const edit = el.querySelector(".message-edit-button");
      edit.hidden = !writable || !settled;
      edit.disabled = busy;
      if (!writable && state.editing === record) cancelEdit(record, { focus: false });
      return;
    }
    const regenerate = el.querySelector(".message-regenerate");
    regenerate.hidden = !writable || !settled || record.parentId === null;
    regenerate.disabled = busy;
    const resume = el.querySelector(".message-continue");
    resume.hidden =
      !writable || !settled || !record.content || !(record.status === "stopped" || record.cutOff) || !isLastInView(record);
    resume.disabled = busy;
  }

  function refreshControls() {
    for (const record of viewRecords()) renderControls(record);
  }

  const dirty = new Set();
  let frameRequested = false;

  function scheduleRender(record) {
    dirty.add(record);
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      const records = [...dirty];
      dirty.clear();
      for (const item of records) renderRecord(item);
      followBottom();
    });
  }

  function renderNow(record) {
    dirty.delete(record);
    renderRecord(record);
    followBottom();
  }

  function updateEmptyState() {
    dom.empty.hidden = dom.messages.children.length > 0;
    const suggestions = dom.empty.querySelector(".suggestions");
    if (suggestions) suggestions.hidden = !canWrite();
  }

  // ---------------------------------------------------------------------------------------
  // Editing a sent message: an inline form in its place; saving sends it under the same parent
  // ---------------------------------------------------------------------------------------

  function editParts(record) {
    const form = record.el.querySelector(".message-edit");
    return { form, input: form.querySelector(".message-edit-input") };
  }

  function growField(input) {
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight}px`; // CSS max-height caps it.
  }

  function startEdit(record) {
    if (!canWrite() || record.id === null) return;
    if (state.editing && state.editing !== record) cancelEdit(state.editing, { focus: false });
    state.editing = record;
    const { form, input } = editParts(record);
    input.value = record.content;
    record.el.classList.add("is-editing");
    form.hidden = false;
    growField(input);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function cancelEdit(record, { focus = true } = {}) {
    const { form } = editParts(record);
    form.hidden = true;
    record.el.classList.remove("is-editing");
    if (state.editing === record) state.editing = null;
    if (focus) record.el.querySelector(".message-edit-button").focus();
  }

  function saveEdit(record) {
    const { input } = editParts(record);
    const content = input.value.trim();
    if (!content) {
      input.focus();
      return;
    }
    if (isBusy()) {
      toast(gettext("Wait for the answer to finish (or stop it) before editing."));
      return;
    }
    const model = dom.modelSelect.value;
    if (!model) {
      toast(gettext("No model is available yet. Ask an administrator to add one."));
      return;
    }
    const parentId = record.parentId;
    cancelEdit(record, { focus: false });
    state.sending = true;
    state.stopRequested = false;
    // The edited message and everything after it leave the view; the server's frames bring
    // the new branch (the old one stays one click away: ‹ 1/2 ›).
    dropAfter(parentId);
    state.pending = addMessage({ role: "user", content, status: "pending", author: state.me });
    state.pendingIsEdit = true;
    scrollToBottom();
    state.socket.send({ type: "send", content, model, parent_id: parentId });
    updateComposer();
  }

  // ---------------------------------------------------------------------------------------
  // Regenerate, continue, branches
  // ---------------------------------------------------------------------------------------

  function regenerate(record) {
    if (!canWrite() || isBusy() || record.id === null || !state.socket) return;
    const frame = { type: "regenerate", message_id: record.id };
    if (dom.modelSelect.value) frame.model = dom.modelSelect.value;
    state.sending = true;
    state.stopRequested = false;
    state.socket.send(frame);
    updateComposer();
  }

  function continueAnswer(record) {
    if (!canWrite() || isBusy() || record.id === null || !state.socket) return;
    state.sending = true;
    state.stopRequested = false;
    state.socket.send({ type: "continue", message_id: record.id });
    updateComposer();
  }

  // While the view is replaced from the server, stream frames wait and then apply, in order,
  // to the new view: a delta for the new branch must not land on the old one.
  function replaceView(load) {
    if (state.viewLoading) return state.viewLoading;
    state.viewLoading = (async () => {
      let result = null;
      try {
        result = await load();
        if (result) applyView(result);
      } finally {
        state.viewLoading = null;
        for (const event of state.held.splice(0)) onSocketEvent(event, true);
        updateComposer();
      }
      return Boolean(result);
    })();
    return state.viewLoading;
  }

  function applyView(result) {
    showMessages(result.messages || []);
    if (!("generatingId" in result)) return;
    const running = result.generatingId;
    const runningRecord = running === null ? null : state.messages.get(running);
    // The page may have been rendered just before a "done" we already applied: trust "done".
    if (runningRecord && runningRecord.status === "streaming") {
      state.generatingId = running;
      state.sending = false;
    } else if (state.generatingId !== null) {
      const record = state.messages.get(state.generatingId);
      if (!record || record.status !== "streaming") state.generatingId = null;
    }
    if (state.generatingId === null && !state.pending) {
      state.sending = false;
      state.stopRequested = false;
    }
  }

  // A search result links to /c/<id>/#m-<message id>: show the branch holding that message
  // (it may not be the current one), then bring it into view and mark it for a moment.
  async function revealLinkedMessage() {
    const match = /^#m-(\d+)$/.exec(window.location.hash);
    if (!match || !state.conversationId) return;
    const id = Number(match[1]);
    if (!state.messages.has(id)) {
      const shown = await replaceView(async () => {
        const result = await post(`/c/${state.conversationId}/branch/`, { message_id: id });
        return result.ok && result.data ? { messages: result.data.messages || [] } : null;
      });
      if (!shown) return;
    }
    const record = state.messages.get(id);
    if (!record) return;
    record.el.scrollIntoView({ block: "center" });
    record.el.classList.add("is-linked");
    window.setTimeout(() => record.el.classList.remove("is-linked"), 2500);
  }

  async function showSibling(record, step) {
    const index = record.siblings.indexOf(record.id);
    const target = record.siblings[index + step];
    if (target === undefined || isBusy() || state.viewLoading || !state.conversationId) return;
    const focusSelector = step < 0 ? ".branch-prev" : ".branch-next";
    const shown = await replaceView(async () => {
      const result = await post(`/c/${state.conversationId}/branch/`, { message_id: target });
      return result.ok && result.data ? { messages: result.data.messages || [] } : null;
    });
    if (!shown) return;
    // Keep the keyboard where it was, on the same control of the version now shown.
    const now = state.messages.get(target);
    if (now) {
      const button = now.el.querySelector(focusSelector);
      const fallback = now.el.querySelector(step < 0 ? ".branch-next" : ".branch-prev");
      (button && !button.disabled ? button : fallback).focus();
      const position = now.siblings.indexOf(now.id) + 1;
      announce(interpolate(gettext("Version %(index)s of %(count)s"), { index: position, count: now.siblings.length }, true));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Scrolling: follow the answer while the reader is at the bottom, not when they scrolled up
  // ---------------------------------------------------------------------------------------

  function distanceFromBottom() {
    return dom.scroll.scrollHeight - dom.scroll.scrollTop - dom.scroll.clientHeight;
  }

  function followBottom() {
    if (state.stickToBottom) dom.scroll.scrollTop = dom.scroll.scrollHeight;
    updateScrollButton();
  }

  function scrollToBottom() {
    state.stickToBottom = true;
    dom.scroll.scrollTop = dom.scroll.scrollHeight;
    updateScrollButton();
  }

  function updateScrollButton() {
    dom.scrollBottom.hidden = distanceFromBottom() <= STICKY_BOTTOM_PX;
  }

  dom.scroll.addEventListener(
    "scroll",
    () => {
      state.stickToBottom = distanceFromBottom() <= STICKY_BOTTOM_PX;
      updateScrollButton();
    },
    { passive: true },
  );
  dom.scrollBottom.addEventListener("click", () => {
    dom.scroll.scrollTo({ top: dom.scroll.scrollHeight, behavior: "smooth" });
    state.stickToBottom = true;
  });

  // ---------------------------------------------------------------------------------------
  // Composer
  // ---------------------------------------------------------------------------------------

  function isBusy() {
    return state.sending || state.generatingId !== null;
  }

  function hasModels() {
    return Boolean(dom.modelSelect.value);
  }

  function updateComposer() {
    const busy = isBusy();
    const writable = canWrite();
    // Readers get a note instead of a composer; the server refuses their frames anyway.
    dom.composer.hidden = !writable;
    dom.readOnly.hidden = writable || state.access === "none";
    if (dom.hint) dom.hint.hidden = !writable;
    dom.input.disabled = !writable || !(page.models || []).length;
    dom.modelSelect.disabled = !writable || !(page.models || []).length;
    dom.composer.dataset.state = busy ? "busy" : "idle";
    dom.send.hidden = busy;
    dom.stop.hidden = !busy || !writable;
    dom.send.disabled = !writable || !dom.input.value.trim() || !hasModels();
    dom.stop.disabled = !writable || state.stopRequested;
    dom.share.hidden = !state.conversationId || state.access !== "owner";
    refreshControls();
  }

  function autoGrow() {
    growField(dom.input);
  }

  function isTouchDevice() {
    return window.matchMedia("(hover: none) and (pointer: coarse)").matches;
  }

  dom.input.addEventListener("input", () => {
    autoGrow();
    updateComposer();
  });

  // keyCode 229: an IME is composing (Chinese, Japanese...): Enter picks a candidate.
  function isPlainEnter(event) {
    return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229;
  }

  dom.input.addEventListener("keydown", (event) => {
    if (!isPlainEnter(event)) return;
    event.preventDefault();
    if (!isBusy()) submitMessage();
  });

  dom.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitMessage();
  });

  dom.stop.addEventListener("click", stopGenerating);

  // The answer a new message replies to: the last one in view, so you answer what you see.
  function replyParent() {
    const records = viewRecords().filter((record) => record !== state.pending);
    if (!records.length) return null;
    const last = records[records.length - 1];
    return last.role === "assistant" && last.id !== null ? last.id : undefined;
  }

  async function submitMessage() {
    const content = dom.input.value.trim();
    if (!content || isBusy() || !canWrite()) return;
    const model = dom.modelSelect.value;
    if (!model) {
      toast(gettext("No model is available yet. Ask an administrator to add one."));
      return;
    }

    state.sending = true;
    state.stopRequested = false;
    updateComposer();

    if (!state.conversationId) {
      const created = await post("/c/new/", { model });
      if (!created.ok || !created.data || !created.data.id) {
        state.sending = false;
        updateComposer();
        return;
      }
      const { id } = created.data;
      state.conversationId = id;
      window.history.pushState({ conversationId: id }, "", created.data.url || `/c/${id}/`);
      // The title is the server's (the "message" frame brings it); until then, "New chat".
      addConversationItem(id, gettext("New chat"));
      emit("chat:conversation", { type: "conversation", id, action: "created", title: "", project: null });
      openSocket();
    } else {
      bumpConversationItem(state.conversationId);
    }

    const frame = { type: "send", content, model };
    const parentId = replyParent();
    if (parentId !== undefined) frame.parent_id = parentId;
    state.pending = addMessage({ role: "user", content, status: "pending", author: state.me });
    state.pendingIsEdit = false;
    dom.input.value = "";
    autoGrow();
    scrollToBottom();
    state.socket.send(frame);
    updateComposer();
    if (!isTouchDevice()) dom.input.focus();
  }

  function stopGenerating() {
    if (!isBusy() || state.stopRequested || !canWrite()) return;
    const socket = state.socket;
    if (socket && !socket.isOpen && state.generatingId === null) {
      // The request never left this page (still connecting): take it back instead.
      socket.dropQueued("send");
      socket.dropQueued("regenerate");
      socket.dropQueued("continue");
      handlers.error({ error: gettext("Not sent: the connection to the server is not ready.") });
      return;
    }
    state.stopRequested = true;
    updateComposer();
    if (socket && (socket.isOpen || state.generatingId === null)) {
      // Frames are ordered: a stop queued behind a queued send still stops that answer.
      socket.send({ type: "stop" });
    } else if (state.conversationId) {
      // The socket is down while the server keeps generating: stop it over HTTP right away.
      post(`/c/${state.conversationId}/stop/`).then((result) => {
        if (!result.ok) {
          state.stopRequested = false;
          updateComposer();
        }
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // The open conversation: title, project crumb, access, leaving it
  // ---------------------------------------------------------------------------------------

  function emit(name, detail) {
    window.dispatchEvent(new CustomEvent(name, { detail }));
  }

  function showServerTitle(title) {
    if (typeof title !== "string" || !title || !state.conversationId) return;
    applyConversationTitle(state.conversationId, title);
    emit("chat:title", { id: state.conversationId, title });
  }

  function setProject(project) {
    state.project = project && project.id ? { id: String(project.id), name: project.name || "" } : null;
    dom.crumb.hidden = !state.project;
    dom.crumbSeparator.hidden = !state.project;
    if (state.project) {
      dom.crumb.href = `/p/${encodeURIComponent(state.project.id)}/`;
      dom.crumbName.textContent = state.project.name;
      if (!state.shared) {
        state.shared = true; // A project conversation is a shared one: show the authors.
        for (const record of viewRecords()) scheduleRender(record);
      }
    } else {
      dom.crumb.removeAttribute("href");
      dom.crumbName.textContent = "";
    }
  }

  function setAccess(level) {
    if (!["read", "write", "owner"].includes(level) || level === state.access) return;
    const wasWritable = canWrite();
    state.access = level;
    if (wasWritable && !canWrite()) {
      // What was on its way cannot be written any more.
      state.sending = false;
      state.stopRequested = false;
      if (state.pending) {
        removeRecord(state.pending);
        state.pending = null;
      }
    }
    updateComposer();
    updateEmptyState();
  }

  // The conversation is gone for this reader: say why on the home page, and go there.
  function leave(message) {
    if (state.leaving) return;
    state.leaving = true;
    clearTimeout(state.leaveTimer);
    if (state.socket) state.socket.close();
    dom.composer.hidden = true;
    toast(message, "info");
    try {
      window.sessionStorage.setItem(STORAGE_FLASH, message);
    } catch (error) {
      // Without storage the toast above is all the reader gets.
    }
    window.location.replace("/");
  }

  function showStoredFlash() {
    let message = null;
    try {
      message = window.sessionStorage.getItem(STORAGE_FLASH);
      window.sessionStorage.removeItem(STORAGE_FLASH);
    } catch (error) {
      message = null;
    }
    if (message) toast(message, "info");
  }

  // ---------------------------------------------------------------------------------------
  // Socket events (docs/ARCHITECTURE.md)
  // ---------------------------------------------------------------------------------------

  const STREAM_FRAMES = new Set(["message", "continue", "snapshot", "delta", "done"]);

  // Follow the conversation to the branch the server now shows (a message arrived whose
  // parent is not in view: someone answered on another branch).
  function followCurrentBranch() {
    return replaceView(async () => {
      const data = await fetchPageData();
      if (!data) return null;
      if (data.access) setAccess(data.access);
      return { messages: data.messages || [], generatingId: data.generating_id ?? null };
    });
  }

  const handlers = {
    access(event) {
      if (event.level === "none") {
        state.access = "none";
        updateComposer();
        // The close that follows says why (4404 deleted, 4403 withdrawn); this is the fallback.
        clearTimeout(state.leaveTimer);
        state.leaveTimer = setTimeout(
          () => leave(gettext("You no longer have access to this conversation.")),
          LEAVE_FALLBACK_MS,
        );
        return;
      }
      setAccess(event.level);
    },

    message(event, replay) {
      const data = event.message || {};
      if (data.id === undefined || data.id === null) return;
      if (event.title) showServerTitle(event.title);
      const known = state.messages.get(data.id);
      if (known) {
        updateRecord(known, data);
        renderNow(known);
      } else {
        const parentId = data.parent_id ?? null;
        const mine =
          data.role === "user" &&
          state.pending &&
          (data.author || state.me) === state.me &&
          state.pending.content === data.content;
        if (!dropAfter(parentId)) {
          if (!replay) {
            // Not on this branch: load the server's current one, then take this frame again.
            state.held.push(event);
            followCurrentBranch();
          }
          return;
        }
        if (mine) {
          // Our own message, confirmed: it keeps its place and gets its id.
          const record = state.pending;
          state.pending = null;
          record.id = data.id;
          updateRecord(record, data);
          state.messages.set(record.id, record);
          renderNow(record);
        } else {
          addMessage(data); // Before a pending message of ours: the server will refuse that one.
        }
        emit("chat:message", { id: state.conversationId, message: data });
      }
      if (data.role === "assistant" && data.status === "streaming") {
        state.generatingId = data.id;
        state.sending = false;
        scrollToBottom();
      }
      updateComposer();
    },

    // An answer is being carried on in place: keep its text, deltas follow from its length.
    continue(event) {
      const data = event.message || {};
      const record = data.id === undefined ? null : state.messages.get(data.id);
      if (!record) return;
      // Its payload lists no siblings (it has not moved in the tree): keep the ones we show.
      updateRecord(record, { ...data, status: "streaming", cut_off: false, error: "" }, { siblings: false });
      state.generatingId = record.id;
      state.sending = false;
      renderNow(record);
      updateComposer();
    },

    snapshot(event, replay) {
      const record = state.messages.get(event.id);
      if (!record) {
        if (!replay) {
          state.held.push(event);
          followCurrentBranch();
        }
        return;
      }
      record.content = event.text || "";
      record.status = "streaming";
      state.generatingId = event.id;
      state.sending = false;
      scheduleRender(record);
      updateComposer();
    },

    delta(event, replay) {
      const record = state.messages.get(event.id);
      if (!record) {
        // Joined mid-answer, or it is on a branch not in view: only a delta from 0 can be
        // placed, once the view shows the server's branch.
        if (event.start === 0 && !replay) {
          state.held.push(event);
          followCurrentBranch();
        }
        return;
      }
      if (record.status !== "streaming") return; // A late delta after "done".
      if (event.start <= record.content.length) {
        record.content = record.content.slice(0, event.start) + event.text;
        scheduleRender(record);
      }
      if (state.generatingId === null) {
        state.generatingId = event.id;
        updateComposer();
      }
    },

    done(event) {
      const record = state.messages.get(event.id);
      if (record) {
        if (typeof event.content === "string") record.content = event.content;
        record.status = event.status || "complete";
        record.error = event.error || "";
        if ("cut_off" in event) record.cutOff = Boolean(event.cut_off);
        renderNow(record);
      }
      if (state.generatingId === event.id || state.generatingId === null) {
        state.generatingId = null;
        if (!state.pending) state.sending = false;
        state.stopRequested = false;
        if (state.socket) state.socket.dropQueued("stop");
      }
      updateComposer();
      if (!record) return;
      const notices = {
        complete: gettext("Answer complete."),
        stopped: gettext("Answer stopped."),
        error: gettext("The answer failed."),
      };
      announce(record.cutOff ? gettext("The answer was cut off at the length limit.") : notices[record.status] || notices.complete);
    },

    error(event) {
      toast(event.error || gettext("The server refused the request."));
      if (event.code === "read_only") setAccess("read");
      if (state.pending) {
        // The message was not stored: give the text back so nothing typed is lost.
        const text = state.pending.content;
        const wasEdit = state.pendingIsEdit;
        removeRecord(state.pending);
        state.pending = null;
        if (wasEdit) {
          // The edit took the old branch out of the view: put the server's view back.
          followCurrentBranch();
        } else if (!dom.input.value.trim() && canWrite()) {
          dom.input.value = text;
          autoGrow();
        }
      }
      if (state.generatingId === null) state.sending = false;
      state.stopRequested = false;
      updateComposer();
    },

    // Renames, moves, deletion (ours to act on when it is the open one) and the sidebar's
    // news: sidebar.js listens to "chat:conversation". The same frame may come twice.
    conversation(event) {
      const open = state.conversationId && String(event.id) === String(state.conversationId);
      if (open) {
        if (event.action === "renamed" && typeof event.title === "string" && event.title) {
          setTitle(event.title);
        } else if (event.action === "deleted") {
          leave(gettext("This conversation was deleted."));
        } else if (event.action === "moved") {
          setProject(event.project ? { id: event.project, name: event.project_name } : null);
          if (typeof event.title === "string" && event.title) setTitle(event.title);
        }
      }
      emit("chat:conversation", event);
    },

    project(event) {
      if (state.project && String(event.id) === state.project.id && event.action === "renamed" && event.name) {
        setProject({ id: state.project.id, name: event.name });
      }
      emit("chat:project", event);
    },
  };

  function onSocketEvent(event, replay = false) {
    // While the view is being replaced, stream frames wait (replaceView applies them after).
    if (state.viewLoading && STREAM_FRAMES.has(event.type)) {
      state.held.push(event);
      return;
    }
    const handler = Object.prototype.hasOwnProperty.call(handlers, event.type)
      ? handlers[event.type]
      : null;
    if (handler) handler(event, replay);
  }

  let connectingTimer = null;

  function onSocketStatus(status) {
    clearTimeout(connectingTimer);
    dom.connection.dataset.state = status;
    if (status === "open" || status === "closed") {
      dom.connection.hidden = true;
    } else if (status === "reconnecting") {
      dom.connection.textContent = gettext("Reconnecting…");
      dom.connection.hidden = false;
    } else {
      // A first connect is usually instant: only mention it if it is not.
      connectingTimer = setTimeout(() => {
        dom.connection.textContent = gettext("Connecting…");
        dom.connection.hidden = false;
      }, 1000);
    }
  }

  // The server closed for good (docs/ARCHITECTURE.md close codes): no more retries.
  function onFinalClose(code) {
    if (code === 4404) {
      leave(gettext("This conversation was deleted."));
    } else if (code === 4403) {
      leave(gettext("You no longer have access to this conversation."));
    } else {
      toast(gettext("Your session has expired. Reload the page and sign in again."));
      state.sending = false;
      updateComposer();
    }
  }

  function openSocket() {
    if (state.socket) state.socket.close();
    state.socket = new window.ConversationSocket(
      window.ConversationSocket.urlFor(state.conversationId),
      {
        onEvent: onSocketEvent,
        onStatus: onSocketStatus,
        onFinalClose,
        onOpen(isReconnect) {
          // Events sent while we were away are gone: a snapshot covers a running answer,
          // the page's own data covers the rest (an answer that finished meanwhile).
          if (isReconnect) setTimeout(resync, RESYNC_DELAY_MS);
        },
      },
    );
    state.socket.connect();
  }

  // The page without an open conversation still hears the sidebar's frames.
  function openHomeSocket() {
    state.socket = new window.ConversationSocket(window.ConversationSocket.homeUrl(), {
      onEvent: onSocketEvent,
      // A home socket that is down matters little: no "Reconnecting…" badge for it.
      onStatus() {},
      onFinalClose(code) {
        if (code === 4401) toast(gettext("Your session has expired. Reload the page and sign in again."));
      },
    });
    state.socket.connect();
  }

  // The conversation's page data (#page-data), read from its HTML: the current branch.
  async function fetchPageData() {
    if (!state.conversationId) return null;
    try {
      const response = await fetch(`/c/${state.conversationId}/`, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok || response.redirected) return null;
      const html = await response.text();
      // DOMParser documents never run scripts: this only reads the json_script.
      const doc = new DOMParser().parseFromString(html, "text/html");
      const script = doc.getElementById("page-data");
      return script ? JSON.parse(script.textContent) : null;
    } catch (error) {
      return null;
    }
  }

  // After a reconnect: show the server's current branch, keeping any text streamed meanwhile.
  function resync() {
    if (!state.conversationId || state.leaving) return;
    followCurrentBranch();
  }

  // ---------------------------------------------------------------------------------------
  // Sidebar: lives in sidebar.js (window.ChatSidebar); the header title stays here
  // ---------------------------------------------------------------------------------------

  const sidebar = window.ChatSidebar || null;

  function addConversationItem(id, title) {
    if (sidebar) sidebar.addConversationItem(id, title);
  }

  function bumpConversationItem(id) {
    if (sidebar) sidebar.bumpConversationItem(id);
  }

  function setTitle(title) {
    dom.title.textContent = title;
    document.title = title ? `${title} · ${BRAND}` : BRAND;
  }

  function applyConversationTitle(id, title) {
    if (sidebar) sidebar.applyConversationTitle(id, title);
    if (String(id) === String(state.conversationId)) setTitle(title);
  }

  // A rename in the sidebar must update the header when it is the open chat.
  if (sidebar) {
    sidebar.onTitle = (id, title) => {
      if (String(id) === String(state.conversationId)) setTitle(title);
    };
  }

  // ---------------------------------------------------------------------------------------
  // Wiring: model picker, suggestions, message buttons, share, history
  // ---------------------------------------------------------------------------------------

  dom.modelSelect.addEventListener("change", () => {
    storageSet(STORAGE_MODEL, dom.modelSelect.value);
    updateComposer();
  });

  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => {
      dom.input.value = button.dataset.prompt || "";
      autoGrow();
      updateComposer();
      dom.input.focus();
    });
  }

  dom.messages.addEventListener("click", async (event) => {
    const codeButton = event.target.closest(".copy-code");
    if (codeButton) {
      const code = codeButton.closest(".code-block").querySelector("pre code");
      if (await copyText(code.textContent)) flashCopied(codeButton);
      else toast(gettext("Copying is blocked by the browser. Select the text instead."));
      return;
    }
    const button = event.target.closest("button");
    const article = button && button.closest(".message");
    const record = article && recordOf.get(article);
    if (!record) return;
    if (button.classList.contains("message-copy")) {
      const text = record.content || article.querySelector(".message-body").innerText;
      if (await copyText(text)) flashCopied(button, button.querySelector(".message-action-label"));
      else toast(gettext("Copying is blocked by the browser. Select the text instead."));
    } else if (button.classList.contains("message-edit-button")) {
      startEdit(record);
    } else if (button.classList.contains("message-edit-cancel")) {
      cancelEdit(record);
    } else if (button.classList.contains("message-regenerate")) {
      regenerate(record);
    } else if (button.classList.contains("message-continue")) {
      continueAnswer(record);
    } else if (button.classList.contains("branch-prev")) {
      showSibling(record, -1);
    } else if (button.classList.contains("branch-next")) {
      showSibling(record, 1);
    }
  });

  dom.messages.addEventListener("submit", (event) => {
    const form = event.target.closest(".message-edit");
    if (!form) return;
    event.preventDefault();
    const record = recordOf.get(form.closest(".message"));
    if (record) saveEdit(record);
  });

  dom.messages.addEventListener("input", (event) => {
    if (event.target.classList.contains("message-edit-input")) growField(event.target);
  });

  dom.messages.addEventListener("keydown", (event) => {
    if (!event.target.classList.contains("message-edit-input")) return;
    const record = recordOf.get(event.target.closest(".message"));
    if (!record) return;
    if (event.key === "Escape") {
      event.preventDefault();
      cancelEdit(record);
    } else if (isPlainEnter(event)) {
      event.preventDefault();
      saveEdit(record);
    }
  });

  // share.js owns the dialog; this page only asks for it.
  dom.share.addEventListener("click", () => {
    if (state.conversationId) emit("chat:share-open", { id: state.conversationId });
  });

  // After pushState from "/" to a new chat, Back/Forward must show the page for that address.
  window.addEventListener("popstate", () => window.location.reload());

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------

  function init() {
    // A new chat starts with the model last picked here, if the server still offers it.
    const remembered = storageGet(STORAGE_MODEL);
    const offered = [...dom.modelSelect.options].some((option) => option.value === remembered);
    if (!state.conversationId && remembered && offered) dom.modelSelect.value = remembered;

    showStoredFlash();
    setProject(state.project);
    for (const message of page.messages || []) addMessage(message);
    const generating = state.generatingId !== null && state.messages.get(state.generatingId);
    if (generating && generating.status !== "streaming") {
      generating.status = "streaming";
      renderNow(generating);
    }
    updateEmptyState();
    updateComposer();
    autoGrow();
    scrollToBottom();

    if (state.conversationId) openSocket();
    else openHomeSocket();
    revealLinkedMessage();
    if (!isTouchDevice() && !dom.input.disabled && canWrite()) dom.input.focus();
  }

  init();
})();
