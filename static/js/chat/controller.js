// What the person asks for (send, edit, regenerate, continue, stop, another version) and the
// conversation socket: each command checks the state, dispatches to the store and sends the
// frame or request (docs/ARCHITECTURE.md). Views call these; they never talk to the server.

import { gettext, interpolate } from "./i18n.js";
import { urlFor } from "./http.js";
import { ConversationSocket, socketUrl } from "./socket.js";
import { Phase, canWrite, isBusy, recordById, replyParent } from "./store.js";

const RESYNC_DELAY_MS = 300;

export function createController({ window, store, http, urls, ui, announce, model, hooks }) {
  let socket = null;
  let syncing = false;

  const state = () => store.getState();
  const conversationUrl = (name, values = {}) => urlFor(urls[name], { conversation_id: state().conversationId, ...values });

  // ---- The socket --------------------------------------------------------------------------------

  function dispatchFrame(frame) {
    store.dispatch({ type: "frame", frame });
  }

  function openSocket() {
    if (socket) socket.close();
    socket = new ConversationSocket(
      socketUrl(window.location, urlFor(urls.socket, { conversation_id: state().conversationId })),
      {
        onEvent: dispatchFrame,
        onStatus: (status) => store.dispatch({ type: "connection", status }),
        onFinalClose(code) {
          // The server closed for good (docs/ARCHITECTURE.md close codes): no more retries.
          if (code === 4404) hooks.leave("deleted");
          else if (code === 4403) hooks.leave("withdrawn");
          else {
            ui.toast(gettext("Your session has expired. Reload the page and sign in again."));
            store.dispatch({ type: "socket-closed" });
          }
        },
        onOpen(isReconnect) {
          // Frames sent while we were away are gone: a snapshot covers a running answer, the
          // sync covers the rest (an answer that finished meanwhile).
          if (isReconnect) window.setTimeout(resync, RESYNC_DELAY_MS);
        },
      },
      { window },
    );
    socket.connect();
  }

  // The page without an open conversation still hears the sidebar's frames.
  function openHomeSocket() {
    socket = new ConversationSocket(
      socketUrl(window.location, urls.home_socket),
      {
        onEvent: dispatchFrame,
        // A home socket that is down matters little: no "Reconnecting…" badge for it.
        onStatus() {},
        onFinalClose(code) {
          if (code === 4401) ui.toast(gettext("Your session has expired. Reload the page and sign in again."));
        },
      },
      { window },
    );
    socket.connect();
  }

  function closeSocket() {
    if (socket) socket.close();
  }

  function dropQueued(type) {
    if (socket) socket.dropQueued(type);
  }

  // ---- Loading a branch ------------------------------------------------------------------------

  // The server's current branch (GET /c/<id>/sync.json): after a reconnect, or when a frame
  // arrived for a message this view does not show. The store holds stream frames meanwhile.
  async function sync() {
    if (syncing || !state().conversationId) return;
    syncing = true;
    const result = await http.get(conversationUrl("sync"));
    syncing = false;
    if (result.ok && result.data) {
      const data = result.data;
      store.dispatch({
        type: "view",
        messages: data.messages || [],
        generatingId: data.generating_id ?? null,
        access: data.access,
        conversation: data.conversation,
      });
    } else {
      store.dispatch({ type: "load-failed" });
    }
  }

  function resync() {
    if (!state().conversationId || hooks.leaving()) return;
    if (!state().loading) store.dispatch({ type: "load-start" });
    sync();
  }

  // Another branch, from POST /c/<id>/branch/ (readers may look; writers make it current).
  async function loadBranch(messageId) {
    if (state().loading) return false;
    store.dispatch({ type: "load-start" });
    const result = await http.post(conversationUrl("branch"), { message_id: messageId });
    if (result.ok && result.data) {
      store.dispatch({ type: "view", messages: result.data.messages || [] });
      return true;
    }
    if (result.error) ui.toast(result.error);
    store.dispatch({ type: "load-failed" });
    return false;
  }

  // ---- Commands -----------------------------------------------------------------------------------

  function chosenModel() {
    const name = model();
    if (!name) ui.toast(gettext("No model is available yet. Ask an administrator to add one."));
    return name;
  }

  // A new message; true once it is on its way (the composer then empties).
  async function submit(content) {
    if (!content || isBusy(state()) || !canWrite(state())) return false;
    const name = chosenModel();
    if (!name) return false;
    store.dispatch({ type: "sending" });
    if (!state().conversationId) {
      const created = await http.post(urls.create, { model: name });
      if (!created.ok || !created.data || !created.data.id) {
        if (created.error) ui.toast(created.error);
        store.dispatch({ type: "send-failed" });
        return false;
      }
      const { id } = created.data;
      store.dispatch({ type: "conversation-created", id });
      window.history.pushState({ conversationId: id }, "", created.data.url || urlFor(urls.conversation, { conversation_id: id }));
      hooks.created(String(id));
      openSocket();
    } else {
      hooks.bumped(state().conversationId);
    }
    const frame = { type: "send", content, model: name };
    const parentId = replyParent(state());
    if (parentId !== undefined) frame.parent_id = parentId;
    store.dispatch({ type: "submit", content });
    socket.send(frame);
    return true;
  }

  // An edited message goes under the same parent: a new branch (‹ 2/2 ›).
  function saveEdit(record, content) {
    if (isBusy(state())) {
      ui.toast(gettext("Wait for the answer to finish (or stop it) before editing."));
      return;
    }
    const name = chosenModel();
    if (!name || !socket) return;
    store.dispatch({ type: "submit", content, edit: true, parentId: record.parentId });
    socket.send({ type: "send", content, model: name, parent_id: record.parentId });
  }

  function regenerate(record) {
    if (!canWrite(state()) || isBusy(state()) || record.id === null || !socket) return;
    const frame = { type: "regenerate", message_id: record.id };
    if (model()) frame.model = model();
    store.dispatch({ type: "request" });
    socket.send(frame);
  }

  function continueAnswer(record) {
    if (!canWrite(state()) || isBusy(state()) || record.id === null || !socket) return;
    store.dispatch({ type: "request" });
    socket.send({ type: "continue", message_id: record.id });
  }

  function stop() {
    const now = state();
    if (!isBusy(now) || now.phase === Phase.STOPPING || !canWrite(now)) return;
    if (socket && !socket.isOpen && now.generatingId === null) {
      // The request never left this page (still connecting): take it back instead.
      socket.dropQueued("send");
      socket.dropQueued("regenerate");
      socket.dropQueued("continue");
      dispatchFrame({ type: "error", error: gettext("Not sent: the connection to the server is not ready.") });
      return;
    }
    store.dispatch({ type: "stop" });
    if (socket && (socket.isOpen || now.generatingId === null)) {
      // Frames are ordered: a stop queued behind a queued send still stops that answer.
      socket.send({ type: "stop" });
    } else if (now.conversationId) {
      // The socket is down while the server keeps generating: stop it over HTTP right away.
      http.post(conversationUrl("stop")).then((result) => {
        if (result.ok) return;
        ui.toast(result.error);
        store.dispatch({ type: "stop-failed" });
      });
    }
  }

  // ‹ or ›: the version `step` away; resolves to its id once shown, or null.
  async function showSibling(record, step) {
    const index = record.siblings.indexOf(record.id);
    const target = record.siblings[index + step];
    const now = state();
    if (target === undefined || isBusy(now) || now.loading || !now.conversationId) return null;
    if (!(await loadBranch(target))) return null;
    const shown = recordById(state(), target);
    if (!shown) return null;
    announce(
      interpolate(
        gettext("Version %(index)s of %(count)s"),
        { index: shown.siblings.indexOf(shown.id) + 1, count: shown.siblings.length },
        true,
      ),
    );
    return target;
  }

  // A search result links to /c/<id>/#m-<message id>: show the branch holding that message
  // (it may not be the current one), then bring it into view.
  async function revealLinked(reveal) {
    const match = /^#m-(\d+)$/.exec(window.location.hash);
    if (!match || !state().conversationId) return;
    const id = Number(match[1]);
    if (!recordById(state(), id) && !(await loadBranch(id))) return;
    reveal(id);
  }

  return {
    openSocket,
    openHomeSocket,
    closeSocket,
    dropQueued,
    sync,
    submit,
    saveEdit,
    regenerate,
    continueAnswer,
    stop,
    showSibling,
    revealLinked,
  };
}
