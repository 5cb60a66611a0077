// The chat page's reducer (static/js/chat/store.js): what every server frame and every action
// of the page does to the phase, the view and the effects. No DOM: the state is plain data.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Phase,
  createStore,
  initialState,
  mergeDelta,
  mergeSnapshot,
  recordById,
  recordFrom,
  reduce,
  replyParent,
} from "../../static/js/chat/store.js";

const CONVERSATION = "0b6a3c52-1111-4222-8333-944455556666";

function message(id, role, fields = {}) {
  return { id, parent_id: id - 1 || null, role, content: `text ${id}`, status: "complete", author: role === "user" ? "alice" : "", siblings: [id], ...fields };
}

// alice's own conversation: a question (1) and its answer (2).
function page(fields = {}) {
  return {
    conversation_id: CONVERSATION,
    conversation: { id: CONVERSATION, title: "Lighthouses", project: null },
    access: "owner",
    owner: "alice",
    me: "alice",
    messages: [message(1, "user"), message(2, "assistant")],
    generating_id: null,
    ...fields,
  };
}

const frame = (payload) => ({ type: "frame", frame: payload });
const apply = (state, ...actions) => actions.reduce(reduce, state);
const types = (state) => state.effects.map((effect) => effect.type);
const ids = (state) => state.view.map((record) => record.id);

// alice pressed Send: her message is pending, the server has not answered yet.
function sending(text = "And at night?") {
  return reduce(initialState(page()), { type: "submit", content: text });
}

// The server stored her message (3) and is streaming its answer (4).
function generating() {
  return apply(
    sending(),
    frame({ type: "message", message: message(3, "user", { parent_id: 2, content: "And at night?" }), title: "Lighthouses" }),
    frame({ type: "message", message: message(4, "assistant", { parent_id: 3, content: "", status: "streaming" }) }),
  );
}

describe("initial state", () => {
  test("an idle conversation shows the page's branch", () => {
    const state = initialState(page());
    assert.equal(state.phase, Phase.IDLE);
    assert.deepEqual(ids(state), [1, 2]);
    assert.equal(state.title, "Lighthouses");
    assert.equal(state.shared, false);
  });

  test("an answer being generated when the page was made is generating and streaming", () => {
    const state = initialState(page({ messages: [message(1, "user"), message(2, "assistant", { status: "complete" })], generating_id: 2 }));
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(state.generatingId, 2);
    assert.equal(recordById(state, 2).status, "streaming");
  });

  test("someone else's or a project's conversation shows its authors", () => {
    assert.equal(initialState(page({ owner: "bob" })).shared, true);
    assert.equal(initialState(page({ conversation: { id: CONVERSATION, title: "", project: { id: "p1", name: "Harbour" } } })).shared, true);
  });
});

describe("phases", () => {
  test("send: idle -> sending, with the pending message last", () => {
    const state = sending();
    assert.equal(state.phase, Phase.SENDING);
    assert.equal(state.view.at(-1).status, "pending");
    assert.equal(state.view.at(-1).id, null);
    assert.deepEqual(types(state), ["scroll-bottom"]);
  });

  test("message frames: our message is confirmed in place, the answer placeholder makes it generating", () => {
    const pendingKey = sending().pendingKey;
    const state = generating();
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(state.generatingId, 4);
    assert.equal(state.pendingKey, null);
    assert.deepEqual(ids(state), [1, 2, 3, 4]);
    assert.equal(state.view[2].key, pendingKey, "the confirmed message keeps its DOM identity");
  });

  test("delta and snapshot frames keep it generating", () => {
    let state = apply(generating(), frame({ type: "delta", id: 4, start: 0, text: "The lamp" }));
    assert.equal(state.phase, Phase.GENERATING);
    state = reduce(state, frame({ type: "snapshot", id: 4, text: "The lamp turns" }));
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(recordById(state, 4).content, "The lamp turns");
  });

  test("a delta for a streaming answer seen while idle makes it generating (joined mid-answer)", () => {
    const streaming = initialState(page({ messages: [message(1, "user"), message(2, "assistant", { status: "streaming", content: "" })] }));
    assert.equal(streaming.phase, Phase.IDLE);
    const state = reduce(streaming, frame({ type: "delta", id: 2, start: 0, text: "Hi" }));
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(state.generatingId, 2);
  });

  test("done: generating -> idle, a queued stop is dropped and the end is announced", () => {
    const state = reduce(generating(), frame({ type: "done", id: 4, status: "complete", content: "The lamp turns.", error: "", cut_off: false }));
    assert.equal(state.phase, Phase.IDLE);
    assert.equal(state.generatingId, null);
    assert.equal(recordById(state, 4).content, "The lamp turns.");
    assert.equal(recordById(state, 4).status, "complete");
    assert.deepEqual(state.effects, [
      { type: "drop-queued", frame: "stop" },
      { type: "answer-done", id: 4, status: "complete", cutOff: false },
    ]);
  });

  test("the done every connect repeats for a finished answer is not announced", () => {
    const state = reduce(initialState(page()), frame({ type: "done", id: 2, status: "complete", content: "text 2", error: "", cut_off: false }));
    assert.equal(state.phase, Phase.IDLE);
    assert.deepEqual(types(state), ["drop-queued"]);
  });

  test("done for another answer than ours changes nothing of ours", () => {
    const state = reduce(generating(), frame({ type: "done", id: 2, status: "complete", content: "text 2" }));
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(state.generatingId, 4);
  });

  test("stop: generating -> stopping -> idle on done(stopped), with the cut-off flag kept", () => {
    let state = reduce(generating(), { type: "stop" });
    assert.equal(state.phase, Phase.STOPPING);
    state = reduce(state, frame({ type: "delta", id: 4, start: 0, text: "The" }));
    assert.equal(state.phase, Phase.STOPPING, "a late delta does not undo the stop");
    state = reduce(state, frame({ type: "done", id: 4, status: "stopped", content: "The", cut_off: false }));
    assert.equal(state.phase, Phase.IDLE);
    assert.equal(recordById(state, 4).status, "stopped");
  });

  test("stop while sending stays stopping when the placeholder arrives", () => {
    let state = reduce(sending(), { type: "stop" });
    assert.equal(state.phase, Phase.STOPPING);
    state = apply(
      state,
      frame({ type: "message", message: message(3, "user", { parent_id: 2, content: "And at night?" }) }),
      frame({ type: "message", message: message(4, "assistant", { parent_id: 3, content: "", status: "streaming" }) }),
    );
    assert.equal(state.phase, Phase.STOPPING);
    assert.equal(state.generatingId, 4);
  });

  test("a stop that failed over HTTP goes back to generating", () => {
    const state = apply(generating(), { type: "stop" }, { type: "stop-failed" });
    assert.equal(state.phase, Phase.GENERATING);
  });

  test("error while sending: idle again, the message leaves the view and its text comes back", () => {
    const state = reduce(sending("Hello"), frame({ type: "error", error: "Too many answers at once." }));
    assert.equal(state.phase, Phase.IDLE);
    assert.deepEqual(ids(state), [1, 2]);
    assert.deepEqual(state.effects, [
      { type: "toast", message: "Too many answers at once." },
      { type: "restore-input", text: "Hello" },
    ]);
  });

  test("error on an edit: the server's branch is loaded again instead", () => {
    const edited = reduce(initialState(page()), { type: "submit", content: "Edited", edit: true, parentId: null });
    assert.deepEqual(ids(edited), [null], "the edited message and its answer left the view");
    const state = reduce(edited, frame({ type: "error", error: "No." }));
    assert.deepEqual(types(state), ["toast", "sync"]);
    assert.equal(state.loading, true);
    assert.equal(state.phase, Phase.IDLE);
  });

  test("error while generating (say, a refused stop) keeps generating", () => {
    const state = apply(generating(), { type: "stop" }, frame({ type: "error", error: "Read only", code: "read_only" }));
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(state.access, "read");
  });

  test("regenerate and continue: idle -> sending; continue frame -> generating in place", () => {
    let state = reduce(initialState(page()), { type: "request" });
    assert.equal(state.phase, Phase.SENDING);
    state = reduce(state, frame({ type: "continue", message: { ...message(2, "assistant"), status: "streaming", siblings: undefined } }));
    assert.equal(state.phase, Phase.GENERATING);
    assert.equal(state.generatingId, 2);
    const record = recordById(state, 2);
    assert.equal(record.status, "streaming");
    assert.equal(record.content, "text 2");
    assert.deepEqual(record.siblings, [2]);
  });

  test("a new chat: sending, then created, or back to idle when creating failed", () => {
    const empty = initialState(page({ conversation_id: null, conversation: null, messages: [] }));
    assert.equal(reduce(empty, { type: "sending" }).phase, Phase.SENDING);
    assert.equal(apply(empty, { type: "sending" }, { type: "send-failed" }).phase, Phase.IDLE);
    assert.equal(apply(empty, { type: "sending" }, { type: "conversation-created", id: CONVERSATION }).conversationId, CONVERSATION);
  });

  test("the socket closing for good ends a send that never left", () => {
    assert.equal(reduce(reduce(initialState(page()), { type: "request" }), { type: "socket-closed" }).phase, Phase.IDLE);
    assert.equal(reduce(generating(), { type: "socket-closed" }).phase, Phase.GENERATING);
  });
});

describe("access", () => {
  test("losing write access drops what was on its way and closes the edit form", () => {
    let state = reduce(initialState(page()), { type: "edit-open", id: 1 });
    assert.equal(state.editingId, 1);
    state = apply(state, { type: "submit", content: "Hi" }, frame({ type: "access", level: "read" }));
    assert.equal(state.access, "read");
    assert.equal(state.phase, Phase.IDLE);
    assert.equal(state.pendingKey, null);
    assert.equal(state.editingId, null);
    assert.deepEqual(ids(state), [1, 2]);
  });

  test("access none asks to leave (the close that follows says why)", () => {
    const state = reduce(initialState(page()), frame({ type: "access", level: "none" }));
    assert.equal(state.access, "none");
    assert.deepEqual(types(state), ["leave-later"]);
  });

  test("readers cannot open the edit form", () => {
    assert.equal(reduce(initialState(page({ access: "read" })), { type: "edit-open", id: 1 }).editingId, null);
  });
});

describe("branches", () => {
  test("a message whose parent is shown replaces everything after it (an edit by someone else)", () => {
    const state = reduce(initialState(page()), frame({ type: "message", message: message(5, "user", { parent_id: null, author: "bob", siblings: [1, 5] }) }));
    assert.deepEqual(ids(state), [5]);
    assert.equal(state.shared, true, "bob wrote here: authors are shown");
    assert.deepEqual(state.effects.map((effect) => effect.name), ["chat:message"]);
  });

  test("a message on a branch not in view loads the server's branch, holding stream frames meanwhile", () => {
    let state = reduce(initialState(page()), frame({ type: "message", message: message(9, "assistant", { parent_id: 8, status: "streaming", content: "" }) }));
    assert.equal(state.loading, true);
    assert.deepEqual(types(state), ["sync"]);
    state = reduce(state, frame({ type: "delta", id: 9, start: 0, text: "Hello" }));
    assert.equal(state.held.length, 2);
    state = reduce(state, {
      type: "view",
      messages: [message(7, "user", { parent_id: null }), message(8, "assistant", { parent_id: 7 }), message(9, "assistant", { parent_id: 8, status: "streaming", content: "" })],
      generatingId: 9,
      access: "owner",
    });
    assert.equal(state.loading, false);
    assert.deepEqual(ids(state), [7, 8, 9]);
    assert.equal(recordById(state, 9).content, "Hello", "the held delta was applied to the new view");
    assert.equal(state.phase, Phase.GENERATING);
  });

  test("a failed load replays the held frames without asking again", () => {
    let state = reduce(initialState(page()), frame({ type: "snapshot", id: 9, text: "x" }));
    assert.deepEqual(types(state), ["sync"]);
    state = reduce(state, { type: "load-failed" });
    assert.equal(state.loading, false);
    assert.deepEqual(types(state), []);
    assert.deepEqual(ids(state), [1, 2]);
  });

  test("a resync keeps text streamed meanwhile and trusts a done already applied", () => {
    let state = apply(generating(), frame({ type: "delta", id: 4, start: 0, text: "The lamp turns" }));
    state = reduce(state, {
      type: "view",
      messages: [message(1, "user"), message(2, "assistant"), message(3, "user", { parent_id: 2 }), message(4, "assistant", { parent_id: 3, status: "streaming", content: "The" })],
      generatingId: 4,
    });
    assert.equal(recordById(state, 4).content, "The lamp turns");
    assert.equal(state.phase, Phase.GENERATING);
    const done = reduce(state, frame({ type: "done", id: 4, status: "complete", content: "The lamp turns." }));
    const stale = reduce(done, {
      type: "view",
      messages: [message(1, "user"), message(2, "assistant"), message(3, "user", { parent_id: 2 }), message(4, "assistant", { parent_id: 3, status: "complete", content: "The lamp turns." })],
      generatingId: null,
    });
    assert.equal(stale.phase, Phase.IDLE);
  });

  test("a resync frame (the server lost frames) loads the conversation once, keeping the streamed text", () => {
    let state = apply(generating(), frame({ type: "delta", id: 4, start: 0, text: "The lamp" }));
    state = reduce(state, frame({ type: "resync" }));
    assert.equal(state.loading, true);
    assert.deepEqual(types(state), ["sync"]);
    state = reduce(state, frame({ type: "snapshot", id: 4, text: "The lamp turns at night" }));
    assert.deepEqual(types(state), [], "a second resync while loading asks nothing more");
    state = reduce(state, frame({ type: "resync" }));
    assert.deepEqual(types(state), []);
    state = reduce(state, {
      type: "view",
      messages: [message(1, "user"), message(2, "assistant"), message(3, "user", { parent_id: 2 }), message(4, "assistant", { parent_id: 3, status: "streaming", content: "The" })],
      generatingId: 4,
    });
    assert.equal(state.loading, false);
    assert.equal(recordById(state, 4).content, "The lamp turns at night");
    assert.equal(state.phase, Phase.GENERATING);
  });

  test("the reply parent is the last answer in view, null for a first message", () => {
    assert.equal(replyParent(initialState(page())), 2);
    assert.equal(replyParent(initialState(page({ messages: [] }))), null);
    assert.equal(replyParent(initialState(page({ messages: [message(1, "user")] }))), undefined);
  });
});

describe("conversation and project frames", () => {
  test("renamed, moved and deleted apply to the open conversation and reach the sidebar", () => {
    let state = reduce(initialState(page()), frame({ type: "conversation", id: CONVERSATION, action: "renamed", title: "Beacons" }));
    assert.equal(state.title, "Beacons");
    assert.deepEqual(state.effects.map((effect) => effect.name), ["chat:conversation"]);
    state = reduce(state, frame({ type: "conversation", id: CONVERSATION, action: "moved", project: "p1", project_name: "Harbour", title: "Beacons" }));
    assert.deepEqual(state.project, { id: "p1", name: "Harbour" });
    assert.equal(state.shared, true);
    state = reduce(state, frame({ type: "conversation", id: CONVERSATION, action: "deleted" }));
    assert.deepEqual(types(state), ["leave", "emit"]);
  });

  test("another conversation's frame only reaches the sidebar", () => {
    const state = reduce(initialState(page()), frame({ type: "conversation", id: "other", action: "deleted" }));
    assert.deepEqual(types(state), ["emit"]);
  });

  test("a message frame's title is the conversation's", () => {
    const state = generating();
    assert.equal(state.title, "Lighthouses");
    const titled = reduce(initialState(page()), frame({ type: "message", message: message(3, "user", { parent_id: 2 }), title: "Night" }));
    assert.equal(titled.title, "Night");
    assert.ok(titled.effects.some((effect) => effect.type === "title" && effect.title === "Night"));
  });

  test("a project rename reaches the crumb", () => {
    const state = reduce(
      initialState(page({ conversation: { id: CONVERSATION, title: "", project: { id: "p1", name: "Harbour" } } })),
      frame({ type: "project", action: "renamed", id: "p1", name: "Port" }),
    );
    assert.deepEqual(state.project, { id: "p1", name: "Port" });
    assert.deepEqual(state.effects.map((effect) => effect.name), ["chat:project"]);
  });

  test("unknown frames and actions change nothing", () => {
    const state = initialState(page());
    assert.equal(reduce(state, frame({ type: "nonsense" })).view, state.view);
    assert.equal(reduce(state, { type: "nonsense" }), state);
  });
});

describe("deltas: by offset, out of order and repeated", () => {
  const streaming = (content = "") => ({ ...recordFrom({ id: 4, role: "assistant", status: "streaming" }, "m4"), content });

  test("in order they append", () => {
    let record = mergeDelta(streaming(), 0, "The ");
    record = mergeDelta(record, 4, "lamp");
    assert.equal(record.content, "The lamp");
  });

  test("a repeated delta changes nothing", () => {
    const record = mergeDelta(mergeDelta(streaming(), 0, "The "), 4, "lamp");
    assert.equal(mergeDelta(record, 4, "lamp"), record);
    assert.equal(mergeDelta(record, 0, "The "), record, "an old one does not shorten the text");
  });

  test("one that overlaps the end (a snapshot had part of it) carries on from its offset", () => {
    assert.equal(mergeDelta(streaming("The la"), 4, "lamp turns").content, "The lamp turns");
  });

  test("one that arrives before the text it follows waits, then applies", () => {
    let record = mergeDelta(streaming(), 4, "lamp");
    assert.equal(record.content, "");
    assert.deepEqual(record.held, [{ start: 4, text: "lamp" }]);
    record = mergeDelta(record, 8, " turns");
    record = mergeDelta(record, 0, "The ");
    assert.equal(record.content, "The lamp turns");
    assert.deepEqual(record.held, []);
  });

  test("a late snapshot keeps the longer text the deltas already brought", () => {
    const record = mergeDelta(streaming("The lamp"), 8, " turns");
    assert.equal(mergeSnapshot(record, "The lamp").content, "The lamp turns");
    assert.equal(mergeSnapshot(streaming("The"), "The lamp").content, "The lamp");
    assert.equal(mergeSnapshot(streaming("Other"), "The lamp").content, "The lamp", "a different text is replaced");
  });

  test("a snapshot fills the gap before held deltas", () => {
    const record = mergeSnapshot(mergeDelta(streaming(), 8, " turns"), "The lamp");
    assert.equal(record.content, "The lamp turns");
  });

  test("through the reducer: a late delta after done is ignored", () => {
    const done = apply(
      generating(),
      frame({ type: "delta", id: 4, start: 0, text: "The lamp" }),
      frame({ type: "done", id: 4, status: "complete", content: "The lamp." }),
    );
    assert.equal(reduce(done, frame({ type: "delta", id: 4, start: 8, text: " extra" })).view, done.view);
    assert.equal(recordById(done, 4).content, "The lamp.");
  });

  test("garbage offsets are ignored", () => {
    const record = streaming("The");
    assert.equal(mergeDelta(record, -1, "x"), record);
    assert.equal(mergeDelta(record, 1.5, "x"), record);
    assert.equal(mergeDelta(record, 0, null), record);
  });
});

describe("store", () => {
  test("listeners hear every action in order, also those dispatched from a listener", () => {
    const store = createStore(reduce, initialState(page()));
    const seen = [];
    store.subscribe((state, previous, action) => {
      seen.push([action.type, previous.phase, state.phase]);
      if (action.type === "request") store.dispatch({ type: "stop" });
    });
    store.dispatch({ type: "request" });
    assert.deepEqual(seen, [
      ["request", Phase.IDLE, Phase.SENDING],
      ["stop", Phase.SENDING, Phase.STOPPING],
    ]);
    assert.equal(store.getState().phase, Phase.STOPPING);
  });
});
