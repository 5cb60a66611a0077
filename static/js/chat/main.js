// The chat page (templates/chat/chat.html), put together. Read this file first.
//
//   store.js       the state and the one reducer: socket frames and the page's actions
//   controller.js  commands (send, edit, stop, ...) and the socket (socket.js)
//   messages.js    the branch in view, drawn from the state (markdown.js for answers)
//   composer.js    the message field, Send/Stop, the model picker
//   header.js      title, project crumb, Share, connection badge
//   live.js        what a screen reader hears
//   sidebar.js     the conversation list; share.js the share dialog
//
// Loaded after (all deferred): the Django JavaScript catalog (gettext, interpolate) and the
// vendored marked, DOMPurify and highlight.js, which are passed in as they are. The server
// gives the page's data, addresses included, in the #page-data json_script.
//
// What other scripts hear, as window events: "chat:title" {id, title}; "chat:conversation"
// (every conversation frame, plus a local {action: "created"} for a chat started on this page);
// "chat:project" (every project frame); "chat:message" {id, message} (a new message is shown);
// "chat:share-open" {id} (the Share button; share.js opens its dialog).

import { createComposer } from "./composer.js";
import { createController } from "./controller.js";
import { createHeader } from "./header.js";
import { createHttp } from "./http.js";
import { gettext } from "./i18n.js";
import { createLive } from "./live.js";
import { createMarkdown } from "./markdown.js";
import { createMessagesView } from "./messages.js";
import { mountShareDialog } from "./share.js";
import { mountSidebar } from "./sidebar.js";
import { createStore, initialState, reduce } from "./store.js";
import { createUi } from "./ui.js";

// A message for the next page (the conversation was deleted, access withdrawn).
const STORAGE_FLASH = "chat.flash";
const LEAVE_FALLBACK_MS = 2000;

export function start(window) {
  const document = window.document;
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const urls = page.urls;
  const ui = createUi(window);
  const http = createHttp(window);
  const live = createLive(window);
  const markdown = createMarkdown({ marked: window.marked, DOMPurify: window.DOMPurify, hljs: window.hljs, window });
  const store = createStore(reduce, initialState(page));
  const emit = (name, detail) => window.dispatchEvent(new window.CustomEvent(name, { detail }));

  const sidebar = mountSidebar({ window, page, urls, http, ui });
  mountShareDialog({ window, urls, http, ui });

  let leaving = false;
  let leaveTimer = null;
  let composer = null;

  // The conversation is gone for this reader: say why on the home page, and go there.
  function leave(reason) {
    if (leaving) return;
    leaving = true;
    window.clearTimeout(leaveTimer);
    controller.closeSocket();
    composer.hide();
    const message =
      reason === "deleted"
        ? gettext("This conversation was deleted.")
        : gettext("You no longer have access to this conversation.");
    ui.toast(message, "info");
    ui.storageSet(STORAGE_FLASH, message, "sessionStorage");
    window.location.replace(urls.home);
  }

  const controller = createController({
    window,
    store,
    http,
    urls,
    ui,
    announce: live.announce,
    model: () => document.getElementById("model-select").value,
    hooks: {
      leave,
      leaving: () => leaving,
      created(id) {
        // The title is the server's (the "message" frame brings it); until then, "New chat".
        if (sidebar) sidebar.addConversationItem(id, gettext("New chat"));
        emit("chat:conversation", { type: "conversation", id, action: "created", title: "", project: null });
      },
      bumped(id) {
        if (sidebar) sidebar.bumpConversationItem(id);
      },
    },
  });
  const messages = createMessagesView({ window, store, markdown, controller, ui, models: page.models });
  composer = createComposer({ window, store, controller, ui, models: page.models });
  const header = createHeader({
    window,
    urls,
    onShare() {
      const id = store.getState().conversationId;
      if (id) emit("chat:share-open", { id });
    },
  });

  const answerNotices = {
    complete: () => gettext("Answer complete."),
    stopped: () => gettext("Answer stopped."),
    error: () => gettext("The answer failed."),
  };

  // What the reducer asked for (store.js, state.effects), after the views have rendered.
  function run(effect) {
    switch (effect.type) {
      case "sync":
        controller.sync();
        break;
      case "leave":
        leave(effect.reason);
        break;
      case "leave-later":
        window.clearTimeout(leaveTimer);
        leaveTimer = window.setTimeout(() => leave("withdrawn"), LEAVE_FALLBACK_MS);
        break;
      case "toast":
        ui.toast(effect.message || gettext("The server refused the request."));
        break;
      case "restore-input":
        composer.restore(effect.text);
        break;
      case "title":
        if (sidebar) sidebar.applyConversationTitle(effect.id, effect.title);
        emit("chat:title", { id: effect.id, title: effect.title });
        break;
      case "emit":
        emit(effect.name, effect.detail);
        break;
      case "drop-queued":
        controller.dropQueued(effect.frame);
        break;
      case "answer-done":
        live.announce(
          effect.cutOff
            ? gettext("The answer was cut off at the length limit.")
            : (answerNotices[effect.status] || answerNotices.complete)(),
        );
        break;
      case "scroll-bottom":
        messages.scrollToBottom();
        break;
      default:
        break;
    }
  }

  store.subscribe((state, previous) => {
    messages.render(state, previous);
    if (state.phase !== previous.phase || state.access !== previous.access) composer.render(state);
    header.render(state, previous);
    live.render(state, previous);
    for (const effect of state.effects) run(effect);
  });

  // A rename in the sidebar must update the header when it is the open chat.
  if (sidebar) {
    sidebar.onTitle = (id, title) => {
      const state = store.getState();
      if (String(id) === String(state.conversationId)) {
        store.dispatch({ type: "retitle", title });
      }
    };
  }

  // After pushState from "/" to a new chat, Back/Forward must show the page for that address.
  window.addEventListener("popstate", () => window.location.reload());

  const flash = ui.storageTake(STORAGE_FLASH);
  if (flash) ui.toast(flash, "info");
  const state = store.getState();
  header.render(state, null);
  messages.mount(state);
  composer.mount(state);
  live.render(state, state);
  if (state.conversationId) controller.openSocket();
  else controller.openHomeSocket();
  controller.revealLinked((id) => messages.reveal(id));
}

// Importing this module elsewhere (node's tests) starts nothing.
if (typeof window !== "undefined" && window.document && window.document.getElementById("page-data")) {
  start(window);
}
