// What a screen reader hears of a streaming answer (static/js/chat/live.js): whole sentences
// in the polite region #sr-answer, a few at a time, the rest when the answer ends.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { createLive, lastSentenceEnd, speakable } from "../../static/js/chat/live.js";
import { initialState, reduce } from "../../static/js/chat/store.js";
import { makeWindow } from "./environment.js";

describe("sentences", () => {
  test("a sentence ends at its mark followed by white space, or at a blank line", () => {
    assert.equal(lastSentenceEnd("The lamp turns"), -1);
    assert.equal(lastSentenceEnd("The lamp turns. The"), "The lamp turns.".length);
    assert.equal(lastSentenceEnd("Pi is 3.14 and"), -1, "a decimal point is no sentence end");
    assert.equal(lastSentenceEnd("Done! Really? Yes. And"), "Done! Really? Yes.".length);
    assert.equal(lastSentenceEnd("A list\n\n- item"), "A list\n\n".length);
    assert.equal(lastSentenceEnd("灯塔很高。它"), "灯塔很高。".length);
    assert.equal(lastSentenceEnd("One. Two. Three", 5), "One. Two.".length);
  });

  test("markdown is read as words", () => {
    assert.equal(speakable("## The **lamp**\n\n- see [the manual](https://x.example/m)\n"), "The lamp see the manual");
    assert.equal(speakable("```python\nprint(1)\n```"), "print(1)");
    assert.equal(speakable("| a | b |\n|---|---|\n| 1 | 2 |"), "a b 1 2");
  });
});

describe("the answer region", () => {
  const CONVERSATION = "c1";
  const page = {
    conversation_id: CONVERSATION,
    conversation: { id: CONVERSATION, title: "", project: null },
    access: "owner",
    owner: "alice",
    me: "alice",
    messages: [{ id: 1, role: "user", content: "Hi", status: "complete" }],
  };
  const frame = (payload) => ({ type: "frame", frame: payload });

  function setUp() {
    const window = makeWindow('<!DOCTYPE html><body><div id="sr-status"></div><div id="sr-answer"></div></body>');
    let now = 0;
    const timers = [];
    window.performance.now = () => now;
    window.setTimeout = (callback, delay) => timers.push({ at: now + delay, callback });
    window.clearTimeout = () => timers.splice(0);
    window.requestAnimationFrame = (callback) => callback();
    const live = createLive(window);
    let state = initialState(page);
    live.render(state, state);
    return {
      region: window.document.getElementById("sr-answer"),
      status: window.document.getElementById("sr-status"),
      step(action) {
        const previous = state;
        state = reduce(state, action);
        live.render(state, previous);
        return state;
      },
      later(ms) {
        now += ms;
        for (const timer of timers.splice(0).filter((item) => item.at <= now)) timer.callback();
      },
      live,
    };
  }

  test("per sentence, not per token, and the rest when the answer is done", () => {
    const { region, step, later } = setUp();
    step(frame({ type: "message", message: { id: 2, parent_id: 1, role: "assistant", content: "", status: "streaming" } }));
    let text = "";
    for (const word of "The lamp turns all night. The keeper".split(/(?= )/)) {
      step(frame({ type: "delta", id: 2, start: text.length, text: word }));
      text += word;
    }
    const pieces = () => [...region.children].map((node) => node.textContent);
    assert.deepEqual(pieces(), ["The lamp turns all night."], "the finished sentence, once");
    step(frame({ type: "delta", id: 2, start: text.length, text: " sleeps. Then" }));
    assert.deepEqual(pieces(), ["The lamp turns all night."], "not more often than every 1.5 s");
    later(1500);
    assert.deepEqual(pieces(), ["The lamp turns all night.", "The keeper sleeps."]);
    step(frame({ type: "done", id: 2, status: "complete", content: `${text} sleeps. Then dawn comes` }));
    assert.deepEqual(pieces(), ["The lamp turns all night.", "The keeper sleeps.", "Then dawn comes"]);
  });

  test("an answer already under way when the page opened is read from where it is", () => {
    const window = makeWindow('<!DOCTYPE html><body><div id="sr-status"></div><div id="sr-answer"></div></body>');
    window.requestAnimationFrame = (callback) => callback();
    const live = createLive(window);
    const state = initialState({
      ...page,
      messages: [...page.messages, { id: 2, parent_id: 1, role: "assistant", content: "Old text. More", status: "streaming" }],
      generating_id: 2,
    });
    live.render(state, state);
    const next = reduce(state, frame({ type: "delta", id: 2, start: 14, text: " words. And" }));
    live.render(next, state);
    assert.deepEqual([...window.document.getElementById("sr-answer").children].map((node) => node.textContent), ["words."]);
  });

  test("notices go to the status region", () => {
    const { status, live } = setUp();
    live.announce("Answer complete.");
    assert.equal(status.textContent, "Answer complete.");
  });
});
