// The chat page's state, and the one reducer that changes it.
//
// Everything the page shows of the open conversation lives in one plain object: the branch
// in view (`view`, oldest first, our own unconfirmed message last), who we are and what we
// may do, the title and project, and the phase of the composer:
//
//   idle ──Send/Regenerate/Continue──▶ sending ──answer placeholder──▶ generating ──done──▶ idle
//                                        │  Stop                        │  Stop
//                                        └──────────▶ stopping ◀────────┘ ──done──▶ idle
//
// `reduce(state, action)` is pure: socket frames arrive as {type: "frame", frame} (the protocol
// is in docs/ARCHITECTURE.md), the page's own intents as the other action types below. What
// the reducer cannot do itself (send a frame, load the branch, say something) it asks for in
// `state.effects`, which main.js carries out after the views have rendered.

export const Phase = Object.freeze({
  IDLE: "idle",
  SENDING: "sending", // a request left (or is queued); no answer is streaming yet
  GENERATING: "generating",
  STOPPING: "stopping", // Stop pressed, the answer has not said "done" yet
});

// While the view is being replaced from the server, these wait and are applied after, in
// order, to the new view: a delta for the new branch must not land on the old one.
const STREAM_FRAMES = new Set(["message", "continue", "snapshot", "delta", "done"]);
const LEVELS = new Set(["read", "write", "owner"]);
// Deltas that arrived before the text they follow (a late snapshot): kept this many at most.
const MAX_HELD_DELTAS = 500;

// ---- Selectors -----------------------------------------------------------------------------

export function canWrite(state) {
  return state.access === "write" || state.access === "owner";
}

export function isBusy(state) {
  return state.phase !== Phase.IDLE;
}

export function indexOfId(view, id) {
  // From the end: what changes is almost always the newest message.
  for (let index = view.length - 1; index >= 0; index -= 1) {
    if (view[index].id === id) return index;
  }
  return -1;
}

export function recordById(state, id) {
  const index = indexOfId(state.view, id);
  return index === -1 ? null : state.view[index];
}

export function pendingRecord(state) {
  if (state.pendingKey === null) return null;
  return state.view.find((record) => record.key === state.pendingKey) || null;
}

// The answer a new message replies to: the last one in view, so you answer what you see.
// null: a first message; undefined: let the server pick (the view ends with a question).
export function replyParent(state) {
  const shown = state.view.filter((record) => record.key !== state.pendingKey);
  if (!shown.length) return null;
  const last = shown[shown.length - 1];
  return last.role === "assistant" && last.id !== null ? last.id : undefined;
}

// ---- Records ---------------------------------------------------------------------------------

function siblingsOf(data) {
  if (Array.isArray(data.siblings) && data.siblings.length) return data.siblings.map(Number);
  return data.id === undefined || data.id === null ? [] : [data.id];
}

export function recordFrom(data, key) {
  return {
    key, // the DOM's identity for it: stays when our own message gets its id
    id: data.id ?? null,
    parentId: data.parent_id ?? null,
    role: data.role === "user" ? "user" : "assistant",
    content: data.content || "",
    status: data.status || "complete",
    error: data.error || "",
    model: data.model || "",
    author: data.author || "",
    cutOff: Boolean(data.cut_off),
    siblings: siblingsOf(data),
    held: [], // out-of-order deltas, {start, text}
  };
}

// What the server says about a message we show (a repeated frame, a resync).
export function mergeMessage(record, data, { siblings = true } = {}) {
  const status = data.status || record.status;
  const next = { ...record, status };
  // Streaming text lives in the frames, not in the database: never shorten it from there.
  const stale =
    record.status === "streaming" &&
    status === "streaming" &&
    (data.content || "").length < record.content.length;
  if (typeof data.content === "string" && !stale) next.content = data.content;
  if ("error" in data) next.error = data.error || "";
  if (data.model) next.model = data.model;
  if (data.author) next.author = data.author;
  if ("cut_off" in data) next.cutOff = Boolean(data.cut_off);
  if ("parent_id" in data) next.parentId = data.parent_id ?? null;
  if (siblings && Array.isArray(data.siblings) && data.siblings.length) next.siblings = siblingsOf(data);
  return next;
}

// Held deltas that now touch the text: applied in order; those it already has are dropped.
function drainHeld(content, held) {
  let text = content;
  let waiting = held;
  let progressed = true;
  while (progressed && waiting.length) {
    progressed = false;
    const still = [];
    for (const delta of waiting) {
      if (delta.start > text.length) {
        still.push(delta);
      } else {
        if (delta.start + delta.text.length > text.length) text = text.slice(0, delta.start) + delta.text;
        progressed = true;
      }
    }
    waiting = still;
  }
  return { content: text, held: waiting };
}

// `text` goes at offset `start` of the answer (docs/ARCHITECTURE.md). A delta the text already
// covers (a duplicate, or one older than a snapshot) changes nothing; one that would leave a
// gap waits until the text before it arrives.
export function mergeDelta(record, start, text) {
  if (typeof text !== "string" || !Number.isInteger(start) || start < 0) return record;
  const content = record.content;
  if (start > content.length) {
    const held = [...record.held, { start, text }].slice(-MAX_HELD_DELTAS);
    return { ...record, held };
  }
  if (start + text.length <= content.length) return record;
  return { ...record, ...drainHeld(content.slice(0, start) + text, record.held) };
}

// The whole partial answer. A snapshot older than what the deltas already brought keeps the
// longer text.
export function mergeSnapshot(record, text) {
  const snapshot = typeof text === "string" ? text : "";
  const keep = record.content.length > snapshot.length && record.content.startsWith(snapshot);
  return { ...record, ...drainHeld(keep ? record.content : snapshot, record.held) };
}

// ---- State -----------------------------------------------------------------------------------

function normalProject(project) {
  return project && project.id ? { id: String(project.id), name: project.name || "" } : null;
}

export function initialState(page = {}) {
  const conversation = page.conversation || null;
  let state = {
    conversationId: page.conversation_id || null,
    me: page.me || "",
    // "read" | "write" | "owner" (page data, then the socket's "access" frames); "none": leaving.
    access: page.access || "owner",
    title: conversation ? conversation.title || "" : "",
    project: normalProject(conversation && conversation.project),
    // Show authors when others may write here: not your own chat, or a project's.
    shared: Boolean(conversation && (page.owner !== page.me || conversation.project)),
    phase: Phase.IDLE,
    generatingId: null,
    view: [],
    pendingKey: null, // our own message, shown before the server confirmed it
    pendingIsEdit: false,
    nextKey: 1,
    editingId: null, // the user message whose edit form is open
    loading: false, // the view is being replaced from the server: stream frames wait in `held`
    held: [],
    connection: "closed",
    effects: [],
  };
  state = replaceView(state, page.messages || []);
  const generating = page.generating_id ?? null;
  if (generating !== null) {
    state = { ...state, generatingId: generating, phase: Phase.GENERATING };
    state = updateRecord(state, generating, (record) => ({ ...record, status: "streaming" }));
  }
  return state;
}

function effect(state, item) {
  return { ...state, effects: [...state.effects, item] };
}

function updateRecord(state, id, change) {
  const index = indexOfId(state.view, id);
  if (index === -1) return state;
  const next = change(state.view[index]);
  if (next === state.view[index]) return state;
  const view = state.view.slice();
  view[index] = next;
  return { ...state, view };
}

function noteAuthor(state, author) {
  if (state.shared || !author || author === state.me) return state;
  return { ...state, shared: true };
}

// `tell`: the sidebar and other scripts hear it too ("chat:title"); a rename or move frame
// reaches the sidebar by itself.
function setTitle(state, title, tell = true) {
  if (typeof title !== "string" || !title) return state;
  const next = { ...state, title };
  return tell ? effect(next, { type: "title", id: state.conversationId, title }) : next;
}

function setProject(state, project) {
  const next = normalProject(project);
  // A project conversation is a shared one: show the authors.
  return { ...state, project: next, shared: state.shared || Boolean(next) };
}

function setAccess(state, level) {
  if (!LEVELS.has(level) || level === state.access) return state;
  const wasWritable = canWrite(state);
  let next = { ...state, access: level };
  if (wasWritable && !canWrite(next)) {
    // What was on its way cannot be written any more.
    next = removePending(next);
    next = { ...next, editingId: null, phase: next.generatingId === null ? Phase.IDLE : Phase.GENERATING };
  }
  return next;
}

function removePending(state) {
  if (state.pendingKey === null) return state;
  return { ...state, view: state.view.filter((record) => record.key !== state.pendingKey), pendingKey: null };
}

function answering(state) {
  return state.phase === Phase.STOPPING ? Phase.STOPPING : Phase.GENERATING;
}

// A new message replaces everything after its parent in the view (our pending one stays):
// that is how an edit or a new answer shows up, whoever made it. null when the parent is not
// shown (the message is on another branch).
function dropAfter(view, parentId, pendingKey) {
  let index = -1;
  if (parentId !== null && parentId !== undefined) {
    index = indexOfId(view, parentId);
    if (index === -1) return null;
  }
  return [...view.slice(0, index + 1), ...view.slice(index + 1).filter((record) => record.key === pendingKey)];
}

// Show this branch instead of the one in view (a branch switch, a resync), keeping any text
// streamed meanwhile and our own pending message.
function replaceView(state, messages) {
  const before = new Map(state.view.filter((record) => record.id !== null).map((record) => [record.id, record]));
  const pending = pendingRecord(state);
  const view = [];
  let next = state;
  for (const data of messages) {
    if (data.id === undefined || data.id === null) continue;
    let record = recordFrom(data, `m${data.id}`);
    const old = before.get(record.id);
    if (old && old.status === "streaming" && record.status === "streaming" && old.content.length > record.content.length) {
      record = { ...record, content: old.content, held: old.held };
    }
    view.push(record);
    next = noteAuthor(next, record.author);
  }
  if (pending) view.push(pending);
  const editing = next.editingId !== null && indexOfId(view, next.editingId) !== -1 ? next.editingId : null;
  return { ...next, view, editingId: editing };
}

// Load the server's current branch, then take this frame again.
function needSync(state, frame) {
  const held = frame ? [...state.held, frame] : state.held;
  if (state.loading) return { ...state, held };
  return effect({ ...state, loading: true, held }, { type: "sync" });
}

function replayHeld(state) {
  let next = { ...state, loading: false, held: [] };
  for (const frame of state.held) next = applyFrame(next, frame, true);
  return next;
}

// ---- Server frames ----------------------------------------------------------------------------

const frameHandlers = {
  access(state, frame) {
    if (frame.level === "none") {
      // The close that follows says why (4404 deleted, 4403 withdrawn); this is the fallback.
      return effect({ ...state, access: "none", editingId: null }, { type: "leave-later" });
    }
    return setAccess(state, frame.level);
  },

  message(state, frame, replay) {
    const data = frame.message || {};
    if (data.id === undefined || data.id === null) return state;
    let next = frame.title ? setTitle(state, frame.title) : state;
    if (indexOfId(next.view, data.id) !== -1) {
      next = updateRecord(next, data.id, (record) => mergeMessage(record, data));
    } else {
      const pending = pendingRecord(next);
      const mine =
        data.role === "user" &&
        pending !== null &&
        (data.author || next.me) === next.me &&
        pending.content === data.content;
      const kept = dropAfter(next.view, data.parent_id ?? null, next.pendingKey);
      // Not on this branch: load the server's current one, then take this frame again.
      if (kept === null) return replay ? state : needSync(state, frame);
      let view;
      if (mine) {
        // Our own message, confirmed: it keeps its place and gets its id.
        view = kept.map((record) => (record.key === next.pendingKey ? mergeMessage({ ...record, id: data.id }, data) : record));
        next = { ...next, pendingKey: null };
      } else {
        // Before a pending message of ours: the server will refuse that one.
        const record = recordFrom(data, `m${data.id}`);
        const at = kept.findIndex((item) => item.key === next.pendingKey);
        view = at === -1 ? [...kept, record] : [...kept.slice(0, at), record, ...kept.slice(at)];
      }
      next = effect({ ...next, view }, { type: "emit", name: "chat:message", detail: { id: next.conversationId, message: data } });
    }
    next = noteAuthor(next, data.author);
    if (data.role === "assistant" && data.status === "streaming") {
      next = effect({ ...next, generatingId: data.id, phase: answering(next) }, { type: "scroll-bottom" });
    }
    return next;
  },

  // An answer is being carried on in place: keep its text, deltas follow from its length.
  continue(state, frame) {
    const data = frame.message || {};
    if (data.id === undefined || indexOfId(state.view, data.id) === -1) return state;
    // Its payload lists no siblings (it has not moved in the tree): keep the ones we show.
    const next = updateRecord(state, data.id, (record) =>
      mergeMessage({ ...record, held: [] }, { ...data, status: "streaming", cut_off: false, error: "" }, { siblings: false }),
    );
    return { ...next, generatingId: data.id, phase: answering(next) };
  },

  // The server lost frames (its Redis restarted): load the conversation again; the running
  // answer's text follows as a snapshot.
  resync: (state, frame, replay) => (replay ? state : needSync(state, null)),

  snapshot(state, frame, replay) {
    if (indexOfId(state.view, frame.id) === -1) return replay ? state : needSync(state, frame);
    const next = updateRecord(state, frame.id, (record) => ({ ...mergeSnapshot(record, frame.text), status: "streaming" }));
    return { ...next, generatingId: frame.id, phase: answering(next) };
  },

  delta(state, frame, replay) {
    if (indexOfId(state.view, frame.id) === -1) {
      // Joined mid-answer, or it is on a branch not in view: only a delta from 0 can be
      // placed, once the view shows the server's branch.
      return frame.start === 0 && !replay ? needSync(state, frame) : state;
    }
    const record = recordById(state, frame.id);
    if (record.status !== "streaming") return state; // A late delta after "done".
    let next = updateRecord(state, frame.id, (item) => mergeDelta(item, frame.start, frame.text));
    if (next.generatingId === null) next = { ...next, generatingId: frame.id, phase: answering(next) };
    return next;
  },

  done(state, frame) {
    const before = recordById(state, frame.id);
    let next = updateRecord(state, frame.id, (record) => ({
      ...record,
      content: typeof frame.content === "string" ? frame.content : record.content,
      status: frame.status || "complete",
      error: frame.error || "",
      cutOff: "cut_off" in frame ? Boolean(frame.cut_off) : record.cutOff,
      held: [],
    }));
    if (next.generatingId === frame.id || next.generatingId === null) {
      const phase = next.pendingKey === null ? Phase.IDLE : Phase.SENDING;
      next = effect({ ...next, generatingId: null, phase }, { type: "drop-queued", frame: "stop" });
    }
    // Said once, when it ends here: not for the "done" every (re)connect repeats.
    if (!before || before.status !== "streaming") return next;
    const record = recordById(next, frame.id);
    return effect(next, { type: "answer-done", id: frame.id, status: record.status, cutOff: record.cutOff });
  },

  error(state, frame) {
    let next = effect(state, { type: "toast", message: frame.error || "" });
    if (frame.code === "read_only") next = setAccess(next, "read");
    const pending = pendingRecord(next);
    if (pending) {
      // The message was not stored: give the text back so nothing typed is lost.
      const wasEdit = next.pendingIsEdit;
      next = removePending(next);
      // The edit took the old branch out of the view: put the server's view back.
      next = wasEdit ? needSync(next, null) : effect(next, { type: "restore-input", text: pending.content });
    }
    return { ...next, phase: next.generatingId === null ? Phase.IDLE : Phase.GENERATING };
  },

  // Renames, moves, deletion (ours to act on when it is the open one) and the sidebar's news:
  // the sidebar listens to "chat:conversation". The same frame may come twice.
  conversation(state, frame) {
    let next = state;
    const open = state.conversationId && String(frame.id) === String(state.conversationId);
    if (open) {
      if (frame.action === "renamed") {
        next = setTitle(next, frame.title, false);
      } else if (frame.action === "deleted") {
        next = effect(next, { type: "leave", reason: "deleted" });
      } else if (frame.action === "moved") {
        next = setProject(next, frame.project ? { id: frame.project, name: frame.project_name } : null);
        next = setTitle(next, frame.title, false);
      }
    }
    return effect(next, { type: "emit", name: "chat:conversation", detail: frame });
  },

  project(state, frame) {
    let next = state;
    if (state.project && String(frame.id) === state.project.id && frame.action === "renamed" && frame.name) {
      next = setProject(next, { id: state.project.id, name: frame.name });
    }
    return effect(next, { type: "emit", name: "chat:project", detail: frame });
  },
};

function applyFrame(state, frame, replay) {
  if (!frame || typeof frame.type !== "string") return state;
  if (state.loading && !replay && STREAM_FRAMES.has(frame.type)) {
    return { ...state, held: [...state.held, frame] };
  }
  const handler = Object.prototype.hasOwnProperty.call(frameHandlers, frame.type) ? frameHandlers[frame.type] : null;
  return handler ? handler(state, frame, replay) : state;
}

// ---- The page's own actions -------------------------------------------------------------------

const actionHandlers = {
  frame: (state, action) => applyFrame(state, action.frame, Boolean(action.replay)),

  // Send pressed on the home page: the conversation is being created first.
  sending: (state) => ({ ...state, phase: Phase.SENDING }),
  "send-failed": (state) => ({ ...state, phase: state.generatingId === null ? Phase.IDLE : Phase.GENERATING }),
  "conversation-created": (state, action) => ({ ...state, conversationId: String(action.id) }),
  // Renamed here, in the sidebar (which already shows it).
  retitle: (state, action) => setTitle(state, action.title, false),

  // Our message, shown at once as pending; an edit first takes the edited message (and all
  // after it) out of the view: the server's frames bring the new branch.
  submit(state, action) {
    let view = state.view;
    if (action.edit) view = dropAfter(view, action.parentId ?? null, state.pendingKey) || view;
    const key = `p${state.nextKey}`;
    const record = recordFrom({ role: "user", content: action.content, status: "pending", author: state.me }, key);
    return effect(
      {
        ...state,
        view: [...view, record],
        pendingKey: key,
        pendingIsEdit: Boolean(action.edit),
        nextKey: state.nextKey + 1,
        editingId: null,
        phase: Phase.SENDING,
      },
      { type: "scroll-bottom" },
    );
  },

  // Regenerate or Continue: a frame left, the answer is the server's to announce.
  request: (state) => ({ ...state, phase: Phase.SENDING }),

  stop: (state) => (isBusy(state) ? { ...state, phase: Phase.STOPPING } : state),
  "stop-failed": (state) =>
    state.phase === Phase.STOPPING
      ? { ...state, phase: state.generatingId === null ? Phase.SENDING : Phase.GENERATING }
      : state,

  // The socket closed for good (not signed in any more): nothing queued will leave.
  "socket-closed": (state) => (state.generatingId === null ? { ...state, phase: Phase.IDLE } : state),
  connection: (state, action) => ({ ...state, connection: action.status }),

  "load-start": (state) => ({ ...state, loading: true }),
  // The server's branch (from POST /c/<id>/branch/ or GET /c/<id>/sync.json), then the frames
  // that waited for it.
  view(state, action) {
    let next = state;
    if (action.access) next = setAccess(next, action.access);
    if (action.conversation) {
      next = setProject(next, action.conversation.project);
      if (action.conversation.title && action.conversation.title !== next.title) next = setTitle(next, action.conversation.title);
    }
    next = replaceView(next, action.messages || []);
    if ("generatingId" in action) {
      const running = action.generatingId ?? null;
      const record = running === null ? null : recordById(next, running);
      // The page may have been rendered just before a "done" we already applied: trust "done".
      if (record && record.status === "streaming") {
        next = { ...next, generatingId: running, phase: answering(next) };
      } else if (next.generatingId !== null) {
        const current = recordById(next, next.generatingId);
        if (!current || current.status !== "streaming") next = { ...next, generatingId: null };
      }
      if (next.generatingId === null && next.pendingKey === null) next = { ...next, phase: Phase.IDLE };
    }
    return replayHeld(next);
  },
  "load-failed": (state) => replayHeld(state),

  "edit-open": (state, action) =>
    canWrite(state) && indexOfId(state.view, action.id) !== -1 ? { ...state, editingId: action.id } : state,
  "edit-close": (state) => ({ ...state, editingId: null }),
};

export function reduce(state, action) {
  const handler = Object.prototype.hasOwnProperty.call(actionHandlers, action.type) ? actionHandlers[action.type] : null;
  if (!handler) return state;
  return handler({ ...state, effects: [] }, action);
}

// ---- The store ----------------------------------------------------------------------------------

// subscribe(listener): listener(state, previous, action) after every action, in order. An
// action dispatched by a listener runs after the current one has reached every listener.
export function createStore(reducer, state) {
  const listeners = [];
  const queue = [];
  let running = false;
  return {
    getState: () => state,
    subscribe(listener) {
      listeners.push(listener);
    },
    dispatch(action) {
      queue.push(action);
      if (running) return;
      running = true;
      try {
        while (queue.length) {
          const next = queue.shift();
          const previous = state;
          state = reducer(state, next);
          for (const listener of listeners) listener(state, previous, next);
        }
      } finally {
        running = false;
      }
    },
  };
}
