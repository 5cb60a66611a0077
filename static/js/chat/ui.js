// Small things every part of the chat page uses: toasts, the clipboard, local preferences.

import { gettext } from "./i18n.js";

const TOAST_MS = 6000;
const COPIED_MS = 1500;

export function createUi(window) {
  const document = window.document;

  function toast(message, kind = "error") {
    const container = document.getElementById("toasts");
    if (!container) return;
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
    container.append(item);
    window.setTimeout(() => item.remove(), TOAST_MS);
  }

  // `field`: a text field holding the text, selected for the legacy path.
  async function copyText(text, field = null) {
    if (window.navigator.clipboard && window.isSecureContext) {
      try {
        await window.navigator.clipboard.writeText(text);
        return true;
      } catch {
        // Fall through to the legacy path (permissions, focus).
      }
    }
    // Plain-HTTP installs on a LAN are not a secure context: navigator.clipboard is missing.
    let helper = field;
    if (!helper) {
      helper = document.createElement("textarea");
      helper.value = text;
      helper.setAttribute("readonly", "");
      helper.className = "clipboard-helper";
      document.body.append(helper);
    }
    helper.select();
    let copied;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    if (!field) helper.remove();
    return copied;
  }

  function flashCopied(button, label = null) {
    const target = label || button;
    const original = target.textContent;
    target.textContent = gettext("Copied!");
    button.classList.add("is-copied");
    window.setTimeout(() => {
      target.textContent = original;
      button.classList.remove("is-copied");
    }, COPIED_MS);
  }

  function storageGet(key, area = "localStorage") {
    try {
      return window[area].getItem(key);
    } catch {
      return null;
    }
  }

  function storageSet(key, value, area = "localStorage") {
    try {
      window[area].setItem(key, value);
    } catch {
      // Preferences are a convenience: ignore disabled storage.
    }
  }

  function storageTake(key, area = "sessionStorage") {
    const value = storageGet(key, area);
    try {
      window[area].removeItem(key);
    } catch {
      // Nothing stored, nothing to forget.
    }
    return value;
  }

  return { toast, copyText, flashCopied, storageGet, storageSet, storageTake };
}
