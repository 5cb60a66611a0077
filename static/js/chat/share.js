// Sharing in the browser: the share dialog of the chat page, and the snapshot page a link opens.
//
// The dialog opens on the window event "chat:share-open" {detail: {id, title?}} (the sidebar's
// menu and the conversation header dispatch it) and speaks the JSON endpoints in
// docs/ARCHITECTURE.md ("HTTP endpoints of the chat"), at the addresses the page data gives.
// Errors are shown inline, every value goes in with textContent. On the snapshot page
// (body.page-share) renderSnapshot() draws the answers' markdown.

import { gettext, interpolate } from "./i18n.js";
import { urlFor } from "./http.js";

function dateFormatter(document) {
  const format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
  return (value) => {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? "" : format.format(date);
  };
}

// The snapshot page (/s/<token>/): the server rendered every message as plain text; answers
// get their markdown here.
export function renderSnapshot({ window, markdown, ui }) {
  const container = window.document.getElementById("shared-messages");
  if (!container) return;
  for (const body of container.querySelectorAll('.message[data-role="assistant"] .message-body')) {
    const text = body.textContent;
    body.replaceChildren(markdown.render(text));
    body.classList.remove("share-plain");
    body.classList.add("markdown");
  }
  container.addEventListener("click", async (event) => {
    const button = event.target.closest(".copy-code");
    if (!button) return;
    const code = button.closest(".code-block").querySelector("pre code");
    if (await ui.copyText(code.textContent)) ui.flashCopied(button);
  });
}

// The share dialog of the chat page; returns {open(id, title)}, or null without the dialog.
export function mountShareDialog({ window, urls, http, ui }) {
  const document = window.document;
  const byId = (id) => document.getElementById(id);
  const formatDate = dateFormatter(document);

  const dom = {
    dialog: byId("share-dialog"),
    close: byId("share-dialog-close"),
    subject: byId("share-dialog-subject"),
    error: byId("share-dialog-error"),
    addForm: byId("share-add-form"),
    username: byId("share-username"),
    permission: byId("share-permission"),
    addButton: byId("share-add-button"),
    people: byId("share-people"),
    peopleEmpty: byId("share-people-empty"),
    newLink: byId("share-new-link"),
    linkUrl: byId("share-link-url"),
    linkCopy: byId("share-link-copy"),
    linkCreate: byId("share-link-create"),
    links: byId("share-links"),
  };
  if (!dom.dialog) return null;

  const PERMISSIONS = [
    ["read", gettext("Can read")],
    ["write", gettext("Can write")],
  ];

  const state = { id: null, busy: false };

  // {ok, status, data, error}: "error" is the server's sentence, or ours.
  const request = (url, method = "GET", body = undefined) => http.request(url, { method, body });
  const conversationUrl = (name, values = {}) => urlFor(urls[name], { conversation_id: state.id, ...values });

  function showError(message) {
    dom.error.textContent = message || "";
    dom.error.hidden = !message;
  }

  function setBusy(busy) {
    state.busy = busy;
    for (const control of dom.dialog.querySelectorAll("input:not([readonly]), select, button")) {
      if (control !== dom.close && control !== dom.linkCopy) control.disabled = busy;
    }
  }

  function renderPeople(people) {
    dom.people.replaceChildren();
    for (const person of people) {
      const row = document.createElement("li");
      row.className = "share-row";
      row.dataset.userId = String(person.user_id);

      const avatar = document.createElement("span");
      avatar.className = "avatar avatar-sm";
      avatar.setAttribute("aria-hidden", "true");
      avatar.textContent = (person.username || "?").slice(0, 1).toUpperCase();

      const name = document.createElement("span");
      name.className = "share-row-name";
      name.textContent = person.username;

      const select = document.createElement("select");
      select.className = "share-select share-row-permission";
      select.setAttribute(
        "aria-label",
        interpolate(gettext("What %(user)s may do"), { user: person.username }, true),
      );
      for (const [value, label] of PERMISSIONS) {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        option.selected = value === person.permission;
        select.append(option);
      }
      select.addEventListener("change", () =>
        act(conversationUrl("shares"), { username: person.username, permission: select.value }),
      );

      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-button share-row-remove";
      const removeLabel = interpolate(gettext("Stop sharing with %(user)s"), { user: person.username }, true);
      remove.setAttribute("aria-label", removeLabel);
      remove.title = removeLabel;
      remove.textContent = "\u00d7";
      remove.addEventListener("click", () =>
        act(conversationUrl("share_remove", { user_id: person.user_id })),
      );

      row.append(avatar, name, select, remove);
      dom.people.append(row);
    }
    dom.peopleEmpty.hidden = people.length > 0;
  }

  function renderLinks(links) {
    dom.links.replaceChildren();
    for (const link of links) {
      const row = document.createElement("li");
      row.className = "share-row share-link-row";
      row.dataset.linkId = String(link.id);
      if (link.revoked) row.classList.add("is-revoked");

      const text = document.createElement("span");
      text.className = "share-row-name";
      text.textContent = link.created_by
        ? interpolate(
            gettext("Created by %(user)s, %(date)s"),
            { user: link.created_by, date: formatDate(link.created_at) },
            true,
          )
        : interpolate(gettext("Created %(date)s"), { date: formatDate(link.created_at) }, true);
      row.append(text);

      if (link.revoked) {
        const badge = document.createElement("span");
        badge.className = "badge share-badge-revoked";
        badge.textContent = gettext("Revoked");
        row.append(badge);
      } else {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.className = "button button-secondary button-small share-link-revoke";
        revoke.textContent = gettext("Revoke");
        revoke.addEventListener("click", () =>
          act(conversationUrl("link_revoke", { link_id: link.id })),
        );
        row.append(revoke);
      }
      dom.links.append(row);
    }
  }

  function render(data) {
    renderPeople((data && data.people) || []);
    renderLinks((data && data.links) || []);
  }

  // A POST that answers with the new lists; its error stays in the dialog.
  async function act(url, body) {
    if (state.busy) return null;
    const id = state.id;
    setBusy(true);
    showError("");
    const result = await request(url, "POST", body);
    setBusy(false);
    if (id !== state.id) return null; // The dialog moved on to another chat meanwhile.
    if (!result.ok) {
      showError(result.error);
      return null;
    }
    render(result.data);
    return result.data;
  }

  function titleFor(id, given) {
    if (given) return given;
    const item = document.querySelector(
      `.conversation-item[data-id="${window.CSS.escape(String(id))}"] .conversation-title`,
    );
    if (item) return item.textContent;
    const header = byId("chat-title");
    return header ? header.textContent : "";
  }

  async function open(id, title) {
    if (!id) return;
    state.id = String(id);
    dom.subject.textContent = interpolate(
      gettext("“%(title)s”"),
      { title: titleFor(id, title) || gettext("New chat") },
      true,
    );
    showError("");
    dom.username.value = "";
    dom.newLink.hidden = true;
    dom.linkUrl.value = "";
    dom.people.replaceChildren();
    dom.links.replaceChildren();
    dom.peopleEmpty.hidden = true;
    if (typeof dom.dialog.showModal === "function") {
      if (!dom.dialog.open) dom.dialog.showModal();
    } else {
      dom.dialog.setAttribute("open", "");
    }
    setBusy(true);
    const result = await request(conversationUrl("shares"));
    if (String(id) !== state.id) return;
    setBusy(false);
    if (!result.ok) {
      showError(result.error);
      setBusy(true); // Nothing here may be changed by this person.
      return;
    }
    render(result.data);
    dom.username.focus();
  }

  dom.addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = dom.username.value.trim();
    if (!username) {
      showError(gettext("Enter a colleague’s username or email."));
      dom.username.focus();
      return;
    }
    const data = await act(conversationUrl("shares"), {
      username,
      permission: dom.permission.value,
    });
    if (data) {
      dom.username.value = "";
      dom.username.focus();
    }
  });

  dom.linkCreate.addEventListener("click", async () => {
    const data = await act(conversationUrl("links"));
    if (!data || !data.url) return;
    // Only its hash is stored: this is the one time the address can be shown.
    dom.linkUrl.value = data.url;
    dom.newLink.hidden = false;
    dom.linkUrl.focus();
    dom.linkUrl.select();
  });

  dom.linkCopy.addEventListener("click", async () => {
    if (await ui.copyText(dom.linkUrl.value, dom.linkUrl)) ui.flashCopied(dom.linkCopy);
    else showError(gettext("Copying is blocked by the browser. Select the link and copy it."));
  });

  dom.close.addEventListener("click", () => dom.dialog.close());
  dom.dialog.addEventListener("close", () => {
    // The address is shown once: closing forgets it.
    dom.linkUrl.value = "";
    dom.newLink.hidden = true;
    state.id = null;
  });

  window.addEventListener("chat:share-open", (event) => {
    const detail = event.detail || {};
    open(detail.id, detail.title);
  });

  return { open };
}
