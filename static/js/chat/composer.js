// The composer, from the store's state: the message field, Send and Stop, the model picker,
// the read-only note for readers, the suggestions of an empty chat. Keyboard: Enter sends,
// Shift+Enter is a new line, Escape stops the answer being written.

import { canWrite, isBusy, Phase } from "./store.js";
import { growField, isPlainEnter } from "./messages.js";

const STORAGE_MODEL = "chat.model";

export function createComposer({ window, store, controller, ui, models }) {
  const document = window.document;
  const byId = (id) => document.getElementById(id);
  const dom = {
    composer: byId("composer"),
    input: byId("composer-input"),
    send: byId("send-button"),
    stop: byId("stop-button"),
    modelSelect: byId("model-select"),
    readOnly: byId("read-only-note"),
    hint: byId("composer-hint"),
  };
  const hasModels = (models || []).length > 0;
  let left = false;

  function isTouchDevice() {
    return window.matchMedia("(hover: none) and (pointer: coarse)").matches;
  }

  function render(state) {
    const busy = isBusy(state);
    const writable = canWrite(state);
    // Readers get a note instead of a composer; the server refuses their frames anyway.
    dom.composer.hidden = !writable || left;
    dom.readOnly.hidden = writable || state.access === "none";
    if (dom.hint) dom.hint.hidden = !writable;
    dom.input.disabled = !writable || !hasModels;
    dom.modelSelect.disabled = !writable || !hasModels;
    dom.composer.dataset.state = busy ? "busy" : "idle";
    // A focused button that disappears would drop the keyboard on the page: back to the field.
    const focused = document.activeElement;
    dom.send.hidden = busy;
    dom.stop.hidden = !busy || !writable;
    dom.send.disabled = !writable || !dom.input.value.trim() || !dom.modelSelect.value;
    dom.stop.disabled = !writable || state.phase === Phase.STOPPING;
    if ((focused === dom.stop || focused === dom.send) && (focused.hidden || focused.disabled) && !dom.input.disabled) {
      dom.input.focus();
    }
  }

  async function submit() {
    const content = dom.input.value.trim();
    if (!content) return;
    if (!(await controller.submit(content))) return;
    dom.input.value = "";
    growField(dom.input);
    render(store.getState());
    if (!isTouchDevice()) dom.input.focus();
  }

  // A refused message comes back, unless something new was typed meanwhile.
  function restore(text) {
    if (dom.input.value.trim() || !canWrite(store.getState())) return;
    dom.input.value = text;
    growField(dom.input);
    render(store.getState());
  }

  function hide() {
    left = true;
    dom.composer.hidden = true;
  }

  dom.input.addEventListener("input", () => {
    growField(dom.input);
    render(store.getState());
  });
  dom.input.addEventListener("keydown", (event) => {
    if (!isPlainEnter(event)) return;
    event.preventDefault();
    if (!isBusy(store.getState())) submit();
  });
  dom.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  dom.stop.addEventListener("click", () => controller.stop());

  // Escape stops the answer, from anywhere in the conversation: not from a dialog, a menu, the
  // sidebar or another field, whose own Escape means something else.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented || !isBusy(store.getState())) return;
    const target = event.target instanceof window.Element ? event.target : null;
    if (target && target.closest("dialog, [role=menu], #sidebar")) return;
    if (target && target !== dom.input && target.matches("input, textarea, select, [contenteditable]")) return;
    if (document.documentElement.classList.contains("sidebar-open")) return;
    event.preventDefault();
    controller.stop();
  });

  dom.modelSelect.addEventListener("change", () => {
    ui.storageSet(STORAGE_MODEL, dom.modelSelect.value);
    render(store.getState());
  });

  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => {
      dom.input.value = button.dataset.prompt || "";
      growField(dom.input);
      render(store.getState());
      dom.input.focus();
    });
  }

  function mount(state) {
    // A new chat starts with the model last picked here, if the server still offers it.
    const remembered = ui.storageGet(STORAGE_MODEL);
    const offered = [...dom.modelSelect.options].some((option) => option.value === remembered);
    if (!state.conversationId && remembered && offered) dom.modelSelect.value = remembered;
    dom.input.readOnly = false; // the template keeps it read only until now
    render(state);
    growField(dom.input);
    if (!isTouchDevice() && !dom.input.disabled && canWrite(state)) dom.input.focus();
  }

  return { mount, render, restore, hide };
}
