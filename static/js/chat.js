// The chat page: sidebar, messages, composer, and the conversation socket.
//
// Needs (loaded before, all deferred): the Django JavaScript catalog (gettext, interpolate),
// marked, DOMPurify, highlight.js, markdown.js (ChatMarkdown) and socket.js (ConversationSocket).
// Page data comes from the #page-data json_script; the protocol is in docs/ARCHITECTURE.md.
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
  const STORAGE_SIDEBAR = "chat.sidebarCollapsed";
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
  // ---------------------------------------------------------------------------------------

  function createRecord(data) {
    const template = data.role === "user" ? dom.tplUser : dom.tplAssistant;
    const el = template.content.firstElementChild.cloneNode(true);
    const record = {
      id: data.id ?? null,
      role: data.role === "user" ? "user" : "assistant",
      content: data.content || "",
      status: data.status || "complete",
      error: data.error || "",
      model: data.model || "",
      el,
      body: el.querySelector(".message-body"),
      renderedKey: null,
    };
    return record;
  }

  function modelLabel(name) {
    const model = (page.models || []).find((item) => item.name === name);
    return model ? model.label || model.name : name;
  }

  // Keep messages in id order; records without an id (pending) stay at the end.
  function insertRecord(record) {
    if (record.id !== null) {
      for (const other of dom.messages.children) {
        const otherId = other.dataset.id ? Number(other.dataset.id) : Infinity;
        if (otherId > Number(record.id)) {
          dom.messages.insertBefore(record.el, other);
          return;
        }
      }
    }
    dom.messages.append(record.el);
  }

  function addMessage(data) {
    const record = createRecord(data);
    if (record.id !== null) state.messages.set(record.id, record);
    insertRecord(record);
    renderNow(record);
    updateEmptyState();
    return record;
  }

  function removeRecord(record) {
    record.el.remove();
    if (record.id !== null) state.messages.delete(record.id);
    updateEmptyState();
  }

  function renderRecord(record) {
    const { el } = record;
    el.dataset.id = record.id ?? "";
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

    if (record.role !== "assistant") return;
    const errorBox = el.querySelector(".message-error");
    const failed = record.status === "error";
    errorBox.hidden = !failed;
    if (failed) {
      el.querySelector(".message-error-text").textContent =
        record.error || gettext("The answer could not be completed.");
    }
    el.querySelector(".badge-stopped").hidden = record.status !== "stopped";
    el.querySelector(".message-model").textContent = record.model ? modelLabel(record.model) : "";
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
    dom.composer.dataset.state = busy ? "busy" : "idle";
    dom.send.hidden = busy;
    dom.stop.hidden = !busy;
    dom.send.disabled = !dom.input.value.trim() || !hasModels();
    dom.stop.disabled = state.stopRequested;
  }

  function autoGrow() {
    dom.input.style.height = "auto";
    dom.input.style.height = `${dom.input.scrollHeight}px`; // CSS max-height caps it.
  }

  function isTouchDevice() {
    return window.matchMedia("(hover: none) and (pointer: coarse)").matches;
  }

  dom.input.addEventListener("input", () => {
    autoGrow();
    updateComposer();
  });

  dom.input.addEventListener("keydown", (event) => {
    // keyCode 229: an IME is composing (Chinese, Japanese...): Enter picks a candidate.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    if (!isBusy()) submitMessage();
  });

  dom.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitMessage();
  });

  dom.stop.addEventListener("click", stopGenerating);

  function titleFromMessage(content) {
    const line = content.split("\n").find((text) => text.trim()) || content;
    const trimmed = line.trim();
    return trimmed.length > 60 ? `${trimmed.slice(0, 57)}…` : trimmed;
  }

  async function submitMessage() {
    const content = dom.input.value.trim();
    if (!content || isBusy()) return;
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
      // The server's title arrives on the next page load (or a "title" event, if it sends one).
      addConversationItem(id, titleFromMessage(content));
      setTitle(titleFromMessage(content));
      openSocket();
    } else {
      bumpConversationItem(state.conversationId);
    }

    state.pending = addMessage({ role: "user", content, status: "pending" });
    dom.input.value = "";
    autoGrow();
    scrollToBottom();
    state.socket.send({ type: "send", content, model });
    updateComposer();
    if (!isTouchDevice()) dom.input.focus();
  }

  function stopGenerating() {
    if (!isBusy() || state.stopRequested) return;
    const socket = state.socket;
    if (socket && !socket.isOpen && state.pending && state.generatingId === null) {
      // The message never left this page (still connecting): take it back instead.
      socket.dropQueued("send");
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
  // Socket events (docs/ARCHITECTURE.md)
  // ---------------------------------------------------------------------------------------

  function assistantRecord(id) {
    return (
      state.messages.get(id) || addMessage({ id, role: "assistant", content: "", status: "streaming" })
    );
  }

  const handlers = {
    message(event) {
      const data = event.message || {};
      if (data.id === undefined || data.id === null) return;
      const known = state.messages.get(data.id);
      if (known) {
        Object.assign(known, {
          content: data.content ?? known.content,
          status: data.status || known.status,
          model: data.model || known.model,
        });
        renderNow(known);
      } else if (data.role === "user" && state.pending) {
        // Our own message, confirmed: it keeps its place and gets its id.
        const record = state.pending;
        state.pending = null;
        Object.assign(record, { id: data.id, content: data.content ?? record.content });
        record.status = data.status || "complete";
        state.messages.set(record.id, record);
        renderNow(record);
      } else {
        addMessage(data);
      }
      if (data.role === "assistant" && data.status === "streaming") {
        state.generatingId = data.id;
        state.sending = false;
      }
      updateComposer();
    },

    snapshot(event) {
      const record = assistantRecord(event.id);
      record.content = event.text || "";
      record.status = "streaming";
      state.generatingId = event.id;
      state.sending = false;
      scheduleRender(record);
      updateComposer();
    },

    delta(event) {
      const record = state.messages.get(event.id);
      if (!record) {
        // Joined mid-answer without a snapshot yet: only a delta from 0 can be placed.
        if (event.start === 0) handlers.snapshot({ id: event.id, text: event.text });
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
      const record = assistantRecord(event.id);
      if (typeof event.content === "string") record.content = event.content;
      record.status = event.status || "complete";
      record.error = event.error || "";
      renderNow(record);
      if (state.generatingId === event.id || state.generatingId === null) {
        state.generatingId = null;
        state.sending = false;
        state.stopRequested = false;
        if (state.socket) state.socket.dropQueued("stop");
      }
      updateComposer();
      const notices = {
        complete: gettext("Answer complete."),
        stopped: gettext("Answer stopped."),
        error: gettext("The answer failed."),
      };
      announce(notices[record.status] || notices.complete);
    },

    error(event) {
      toast(event.error || gettext("The server refused the request."));
      if (state.pending) {
        // The message was not stored: give the text back so nothing typed is lost.
        const text = state.pending.content;
        removeRecord(state.pending);
        state.pending = null;
        if (!dom.input.value.trim()) {
          dom.input.value = text;
          autoGrow();
        }
      }
      if (state.generatingId === null) state.sending = false;
      state.stopRequested = false;
      updateComposer();
    },

    // Not in the protocol yet: lets the server rename a chat live (e.g. an automatic title).
    title(event) {
      if (typeof event.title === "string" && event.title) {
        applyConversationTitle(state.conversationId, event.title);
      }
    },
  };

  function onSocketEvent(event) {
    const handler = Object.prototype.hasOwnProperty.call(handlers, event.type)
      ? handlers[event.type]
      : null;
    if (handler) handler(event);
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

  function openSocket() {
    if (state.socket) state.socket.close();
    state.socket = new window.ConversationSocket(
      window.ConversationSocket.urlFor(state.conversationId),
      {
        onEvent: onSocketEvent,
        onStatus: onSocketStatus,
        onOpen(isReconnect) {
          // Events sent while we were away are gone: a snapshot covers a running answer,
          // the page's own data covers the rest (an answer that finished meanwhile).
          if (isReconnect) setTimeout(resync, RESYNC_DELAY_MS);
        },
      },
    );
    state.socket.connect();
  }

  // Reload the conversation's messages from its page (#page-data) and merge what we missed.
  async function resync() {
    if (!state.conversationId) return;
    let data;
    try {
      const response = await fetch(`/c/${state.conversationId}/`, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok || response.redirected) return;
      const html = await response.text();
      // DOMParser documents never run scripts: this only reads the json_script.
      const doc = new DOMParser().parseFromString(html, "text/html");
      const script = doc.getElementById("page-data");
      if (!script) return;
      data = JSON.parse(script.textContent);
    } catch (error) {
      return;
    }

    for (const message of data.messages || []) {
      const known = state.messages.get(message.id);
      if (!known) {
        if (message.role === "user" && state.pending && state.pending.content === message.content) {
          handlers.message({ message });
        } else {
          addMessage(message);
        }
      } else if (known.status === "streaming" && message.status !== "streaming") {
        Object.assign(known, {
          content: message.content,
          status: message.status,
          error: message.error || "",
        });
        renderNow(known);
      }
    }
    const running = data.generating_id ?? null;
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
    updateComposer();
  }

  // ---------------------------------------------------------------------------------------
  // Sidebar: conversation list, grouping by date, rename, delete, drawer
  // ---------------------------------------------------------------------------------------

  function conversationItems() {
    return [...dom.list.querySelectorAll(".conversation-item")];
  }

  function findConversationItem(id) {
    return conversationItems().find((item) => item.dataset.id === String(id)) || null;
  }

  function groupLabel(date, now) {
    const startOfDay = (value) => new Date(value.getFullYear(), value.getMonth(), value.getDate());
    const days = Math.round((startOfDay(now) - startOfDay(date)) / 86400000);
    if (Number.isNaN(days) || days <= 0) return gettext("Today");
    if (days === 1) return gettext("Yesterday");
    if (days <= 7) return gettext("Previous 7 days");
    if (days <= 30) return gettext("Previous 30 days");
    return gettext("Older");
  }

  // Insert "Today", "Yesterday"... headings; the list itself arrives newest first.
  function regroupConversations() {
    for (const heading of dom.list.querySelectorAll(".conversation-group")) heading.remove();
    const now = new Date();
    let previous = null;
    for (const item of conversationItems()) {
      const label = groupLabel(new Date(item.dataset.updated || now), now);
      if (label !== previous) {
        const heading = document.createElement("li");
        heading.className = "conversation-group";
        heading.setAttribute("role", "presentation");
        heading.textContent = label;
        dom.list.insertBefore(heading, item);
        previous = label;
      }
    }
    dom.listEmpty.hidden = conversationItems().length > 0;
  }

  function setActiveConversation(id) {
    for (const item of conversationItems()) {
      const active = item.dataset.id === String(id);
      item.classList.toggle("is-active", active);
      const link = item.querySelector(".conversation-link");
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  function addConversationItem(id, title) {
    const item = dom.tplConversation.content.querySelector(".conversation-item").cloneNode(true);
    item.dataset.id = id;
    item.dataset.updated = new Date().toISOString();
    item.querySelector(".conversation-link").href = `/c/${id}/`;
    item.querySelector(".conversation-title").textContent = title;
    dom.list.prepend(item);
    setActiveConversation(id);
    regroupConversations();
  }

  // A new message makes the chat the most recent one: move it to the top, as the server will.
  function bumpConversationItem(id) {
    const item = findConversationItem(id);
    if (!item) return;
    item.dataset.updated = new Date().toISOString();
    dom.list.prepend(item);
    regroupConversations();
  }

  function setTitle(title) {
    dom.title.textContent = title;
    document.title = title ? `${title} · ${BRAND}` : BRAND;
  }

  function applyConversationTitle(id, title) {
    const item = findConversationItem(id);
    if (item) item.querySelector(".conversation-title").textContent = title;
    if (String(id) === String(state.conversationId)) setTitle(title);
  }

  function startRename(item) {
    if (item.classList.contains("is-editing")) return;
    const id = item.dataset.id;
    const link = item.querySelector(".conversation-link");
    const titleEl = item.querySelector(".conversation-title");
    const previous = titleEl.textContent;

    const input = document.createElement("input");
    input.type = "text";
    input.className = "conversation-rename-input";
    input.value = previous;
    input.maxLength = 200;
    input.setAttribute("aria-label", gettext("New name for this chat"));
    item.classList.add("is-editing");
    link.hidden = true;
    item.insertBefore(input, link);
    input.focus();
    input.select();

    let finished = false;
    async function finish(save) {
      if (finished) return;
      finished = true;
      const value = input.value.trim();
      input.remove();
      link.hidden = false;
      item.classList.remove("is-editing");
      if (!save || !value || value === previous) return;
      titleEl.textContent = value; // Optimistic; put back below if the server refuses.
      const result = await post(`/c/${id}/rename/`, { title: value });
      if (result.ok) {
        applyConversationTitle(id, (result.data && result.data.title) || value);
      } else {
        titleEl.textContent = previous;
      }
    }
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
  }

  function confirmDelete(title) {
    const text = interpolate(
      gettext("“%(title)s” and all its messages will be deleted. This cannot be undone."),
      { title },
      true,
    );
    if (!dom.dialog || typeof dom.dialog.showModal !== "function") {
      return Promise.resolve(window.confirm(text));
    }
    dom.dialogText.textContent = text;
    dom.dialog.returnValue = "";
    dom.dialog.showModal();
    return new Promise((resolve) => {
      dom.dialog.addEventListener("close", () => resolve(dom.dialog.returnValue === "confirm"), {
        once: true,
      });
    });
  }

  async function deleteConversation(item) {
    const id = item.dataset.id;
    const title = item.querySelector(".conversation-title").textContent;
    if (!(await confirmDelete(title))) return;
    const result = await post(`/c/${id}/delete/`);
    if (!result.ok) return;
    if (String(id) === String(state.conversationId)) {
      window.location.assign("/");
      return;
    }
    item.remove();
    regroupConversations();
    toast(gettext("Chat deleted."), "info");
  }

  dom.list.addEventListener("click", (event) => {
    const item = event.target.closest(".conversation-item");
    if (!item) return;
    if (event.target.closest(".conversation-rename")) {
      event.preventDefault();
      startRename(item);
    } else if (event.target.closest(".conversation-delete")) {
      event.preventDefault();
      deleteConversation(item);
    }
  });

  const mobileQuery = window.matchMedia("(max-width: 768px)");
  const root = document.documentElement;

  function syncSidebarToggle() {
    const open = mobileQuery.matches
      ? root.classList.contains("sidebar-open")
      : !root.classList.contains("sidebar-collapsed");
    dom.sidebarToggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function setDrawer(open) {
    root.classList.toggle("sidebar-open", open);
    syncSidebarToggle();
    if (open) {
      const first = dom.sidebar.querySelector("a, button");
      if (first) first.focus();
    }
  }

  function toggleSidebar() {
    if (mobileQuery.matches) {
      setDrawer(!root.classList.contains("sidebar-open"));
    } else {
      const collapsed = !root.classList.contains("sidebar-collapsed");
      root.classList.toggle("sidebar-collapsed", collapsed);
      storageSet(STORAGE_SIDEBAR, collapsed ? "1" : "0");
      syncSidebarToggle();
    }
  }

  dom.sidebarToggle.addEventListener("click", toggleSidebar);
  dom.sidebarClose.addEventListener("click", toggleSidebar);
  dom.backdrop.addEventListener("click", () => setDrawer(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.classList.contains("sidebar-open")) setDrawer(false);
  });
  mobileQuery.addEventListener("change", () => {
    root.classList.remove("sidebar-open");
    syncSidebarToggle();
  });

  // ---------------------------------------------------------------------------------------
  // Wiring: model picker, suggestions, copy buttons, history
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
    const answerButton = event.target.closest(".message-copy");
    if (answerButton) {
      const article = answerButton.closest(".message");
      const record = state.messages.get(Number(article.dataset.id));
      const text = record ? record.content : article.querySelector(".message-body").innerText;
      if (await copyText(text)) flashCopied(answerButton, answerButton.querySelector(".message-action-label"));
      else toast(gettext("Copying is blocked by the browser. Select the text instead."));
    }
  });

  // After pushState from "/" to a new chat, Back/Forward must show the page for that address.
  window.addEventListener("popstate", () => window.location.reload());

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------

  function init() {
    if (storageGet(STORAGE_SIDEBAR) === "1") root.classList.add("sidebar-collapsed");
    syncSidebarToggle();
    regroupConversations();

    // A new chat starts with the model last picked here, if the server still offers it.
    const remembered = storageGet(STORAGE_MODEL);
    const offered = [...dom.modelSelect.options].some((option) => option.value === remembered);
    if (!state.conversationId && remembered && offered) dom.modelSelect.value = remembered;

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
    if (!isTouchDevice() && !dom.input.disabled) dom.input.focus();
  }

  init();
})();
