// Sharing in the browser: the share dialog of the chat page, and the snapshot page a link opens.
//
// The dialog opens on the window event "chat:share-open" {detail: {id, title?}} (the sidebar's
// menu and the conversation header dispatch it) and speaks the JSON endpoints in
// docs/ARCHITECTURE.md ("HTTP endpoints of the chat"). Errors are shown inline, every value goes
// in with textContent. On the snapshot page (body.page-share) it renders the answers' markdown.
// Needs the Django JavaScript catalog (gettext, interpolate); the snapshot page also markdown.js.
(function () {
  "use strict";

  const gettext = window.gettext || ((text) => text);
  const interpolate =
    window.interpolate ||
    ((format, values, named) =>
      named
        ? format.replace(/%\((\w+)\)s/g, (match, key) => String(values[key]))
        : format.replace(/%s/g, () => String(values.shift())));

  const byId = (id) => document.getElementById(id);

  const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });

  function formatDate(value) {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? "" : dateFormat.format(date);
  }

  async function copyText(text, field) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (error) {
        // Fall through to the legacy path (permissions, focus).
      }
    }
    // Plain-HTTP installs on a LAN are not a secure context: navigator.clipboard is missing.
    if (field) field.select();
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function flashCopied(button) {
    const original = button.textContent;
    button.textContent = gettext("Copied!");
    button.classList.add("is-copied");
    setTimeout(() => {
      button.textContent = original;
      button.classList.remove("is-copied");
    }, 1500);
  }

  // ---------------------------------------------------------------------------------------
  // The snapshot page (/s/<token>/)
  // ---------------------------------------------------------------------------------------

  function renderSnapshot() {
    const markdown = window.ChatMarkdown;
    const container = byId("shared-messages");
    if (!container || !markdown) return;
    // The server rendered every message as plain text; answers get their markdown here.
    for (const body of container.querySelectorAll('.message[data-role="assistant"] .message-body')) {
      const text = body.textContent;
      body.replaceChildren(markdown.render(text, { streaming: false }));
      body.classList.remove("share-plain");
      body.classList.add("markdown");
    }
    container.addEventListener("click", async (event) => {
      const button = event.target.closest(".copy-code");
      if (!button) return;
      const code = button.closest(".code-block").querySelector("pre code");
      if (await copyText(code.textContent)) flashCopied(button);
    });
  }

  if (document.body.classList.contains("page-share")) {
    renderSnapshot();
    return;
  }

  // ---------------------------------------------------------------------------------------
  // The share dialog
  // ---------------------------------------------------------------------------------------

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
  if (!dom.dialog) return;

  const PERMISSIONS = [
    ["read", gettext("Can read")],
    ["write", gettext("Can write")],
  ];

  const state = { id: null, busy: false };

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  // {ok, status, data, error}: "error" is the server's sentence, or ours.
  async function request(url, method = "GET", body) {
    let response;
    try {
      const headers = { Accept: "application/json" };
      if (method !== "GET") {
        headers["X-CSRFToken"] = csrfToken();
        headers["Content-Type"] = "application/json";
      }
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return {
        ok: false,
        status: 0,
        data: null,
        error: gettext("Cannot reach the server. Check your connection and try again."),
      };
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
    if (response.redirected && !isJson) {
      return {
        ok: false,
        status: response.status,
        data: null,
        error: gettext("Your session has expired. Reload the page and sign in again."),
      };
    }
    if (!response.ok) {
      const message =
        (data && data.error) ||
        interpolate(gettext("Something went wrong (error %s). Try again."), [response.status]);
      return { ok: false, status: response.status, data, error: message };
    }
    return { ok: true, status: response.status, data, error: "" };
  }

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
        act(`/c/${state.id}/shares/`, { username: person.username, permission: select.value }),
      );

      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-button share-row-remove";
      const removeLabel = interpolate(gettext("Stop sharing with %(user)s"), { user: person.username }, true);
      remove.setAttribute("aria-label", removeLabel);
      remove.title = removeLabel;
      remove.textContent = "\u00d7";
      remove.addEventListener("click", () =>
        act(`/c/${state.id}/shares/${encodeURIComponent(person.user_id)}/remove/`),
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
          act(`/c/${state.id}/links/${encodeURIComponent(link.id)}/revoke/`),
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
      `.conversation-item[data-id="${CSS.escape(String(id))}"] .conversation-title`,
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
    const result = await request(`/c/${encodeURIComponent(state.id)}/shares/`);
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
    const data = await act(`/c/${state.id}/shares/`, {
      username,
      permission: dom.permission.value,
    });
    if (data) {
      dom.username.value = "";
      dom.username.focus();
    }
  });

  dom.linkCreate.addEventListener("click", async () => {
    const data = await act(`/c/${state.id}/links/`);
    if (!data || !data.url) return;
    // Only its hash is stored: this is the one time the address can be shown.
    dom.linkUrl.value = data.url;
    dom.newLink.hidden = false;
    dom.linkUrl.focus();
    dom.linkUrl.select();
  });

  dom.linkCopy.addEventListener("click", async () => {
    if (await copyText(dom.linkUrl.value, dom.linkUrl)) flashCopied(dom.linkCopy);
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

  window.ChatShare = { open };
})();
