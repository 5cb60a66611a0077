// The chat page's sidebar: search, projects, "Shared with me", the conversation list grouped
// by date (loaded a page at a time as it scrolls), archived chats, the per-chat menu, the drawer.
//
// mountSidebar({window, page, urls, http, ui}) returns what the conversation view calls when it
// creates or bumps a conversation. It also follows the window events the page dispatches from
// the socket's frames, which keep every open tab true: "chat:conversation" (the
// {"type": "conversation", ...} frame), "chat:project" and "chat:title". Frames may arrive
// twice, so every handler sets state rather than toggling it. All user text goes in with
// textContent.
//
// Keyboard: the conversation links are in the Tab order; ArrowUp/ArrowDown (Home/End) move
// between them, Alt+ArrowUp/Alt+ArrowDown open the previous/next conversation from anywhere,
// a conversation's "…" menu opens with Enter, Space or ArrowDown and closes with Escape.

import { gettext, interpolate } from "./i18n.js";
import { urlFor } from "./http.js";

const STORAGE_SIDEBAR = "chat.sidebarCollapsed";
const REFRESH_DELAY_MS = 250;
const DAY_MS = 86400000;
const SEARCH_DELAY_MS = 250;
const SEARCH_LIMIT = 8;

export function mountSidebar({ window, page, urls, http, ui }) {
  const document = window.document;
  const byId = (id) => document.getElementById(id);

  const dom = {
    sidebar: byId("sidebar"),
    sidebarToggle: byId("sidebar-toggle"),
    sidebarClose: byId("sidebar-close"),
    backdrop: byId("sidebar-backdrop"),
    nav: byId("conversation-nav"),
    search: document.querySelector(".sidebar-search"),
    searchInput: byId("sidebar-search-input"),
    list: byId("conversation-list"),
    listEmpty: byId("conversation-list-empty"),
    sentinel: byId("conversation-list-more"),
    retry: byId("conversation-list-retry"),
    archivedToggle: byId("archived-toggle"),
    archivedPanel: byId("archived-panel"),
    archivedList: byId("archived-list"),
    archivedEmpty: byId("archived-list-empty"),
    archivedMore: byId("archived-list-more"),
    sharedSection: byId("sidebar-shared"),
    sharedList: byId("shared-list"),
    projectList: byId("project-list"),
    menu: byId("conversation-menu"),
    moveDialog: byId("move-dialog"),
    moveForm: byId("move-dialog-form"),
    moveText: byId("move-dialog-text"),
    moveOptions: byId("move-options"),
    moveError: byId("move-dialog-error"),
    dialog: byId("confirm-dialog"),
    dialogText: byId("confirm-dialog-text"),
    tplConversation: byId("tpl-conversation-item"),
    tplShared: byId("tpl-shared-item"),
  };
  if (!dom.sidebar || !dom.list) return null;

  const state = {
    activeId: page.conversation_id ? String(page.conversation_id) : null,
    next: page.sidebar_next || null, // cursor of the next page of the main list; null: all shown
    loading: false,
    archivedNext: null,
    archivedLoaded: false,
    archivedLoading: false,
    refreshTimer: null,
    menuItem: null, // the conversation item whose menu is open
    menuButton: null,
    moveItem: null,
  };
  // main.js sets this to learn about titles changed here (the header shows the open one).
  const hooks = { onTitle: null };

  // ---------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------

  const { storageGet, storageSet, toast } = ui;

  // {ok, status, data, error}: "error" is a sentence for the person. Unless quiet (a dialog
  // shows it inline instead), a failure is also shown as a toast.
  async function request(url, { method = "GET", body, quiet = false } = {}) {
    const result = await http.request(url, { method, body });
    if (!result.ok && !quiet) toast(result.error);
    return result;
  }

  const post = (url, body, options = {}) => request(url, { ...options, method: "POST", body });
  const conversationUrl = (name, id) => urlFor(urls[name], { conversation_id: id });

  function untitled(title) {
    return title || gettext("New chat");
  }

  // ---------------------------------------------------------------------------------------
  // Conversation items: the main list (own, not archived), archived, shared with me
  // ---------------------------------------------------------------------------------------

  function itemsOf(list) {
    return list ? [...list.querySelectorAll(":scope > .conversation-item")] : [];
  }

  function conversationItems() {
    return itemsOf(dom.list);
  }

  function findIn(list, id) {
    return itemsOf(list).find((item) => item.dataset.id === String(id)) || null;
  }

  function findConversationItem(id) {
    return findIn(dom.list, id);
  }

  // Own conversations, wherever they are shown.
  function ownItems(id) {
    return [findIn(dom.list, id), findIn(dom.archivedList, id)].filter(Boolean);
  }

  function newItem() {
    return dom.tplConversation.content.querySelector(".conversation-item").cloneNode(true);
  }

  function setItemProject(item, projectId, name) {
    item.dataset.projectId = projectId || "";
    const label = item.querySelector(".conversation-project");
    if (label) label.textContent = projectId ? name || "" : "";
  }

  // Fill an item from a conversation payload (GET /c/list/, flags, move answers).
  function fillItem(item, conversation) {
    item.dataset.id = conversation.id;
    if (conversation.updated_at) item.dataset.updated = conversation.updated_at;
    if (!item.dataset.updated) item.dataset.updated = new Date().toISOString();
    if (conversation.pinned !== undefined) item.dataset.pinned = conversation.pinned ? "1" : "0";
    if (conversation.archived !== undefined) {
      item.dataset.archived = conversation.archived ? "1" : "0";
    }
    item.querySelector(".conversation-link").href = conversationUrl("conversation", conversation.id);
    if (conversation.title !== undefined) {
      item.querySelector(".conversation-title").textContent = untitled(conversation.title);
    }
    if (conversation.project !== undefined) {
      const project = conversation.project;
      setItemProject(item, project && project.id, project && project.name);
    }
    markActive(item);
    return item;
  }

  function markActive(item) {
    const active = state.activeId !== null && item.dataset.id === state.activeId;
    item.classList.toggle("is-active", active);
    const link = item.querySelector(".conversation-link");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }

  // The server's order: pinned first, then most recently updated (then id, as the cursor does).
  function comesBefore(a, b) {
    const pa = a.dataset.pinned === "1";
    const pb = b.dataset.pinned === "1";
    if (pa !== pb) return pa;
    const ta = Date.parse(a.dataset.updated) || 0;
    const tb = Date.parse(b.dataset.updated) || 0;
    if (ta !== tb) return ta > tb;
    return a.dataset.id > b.dataset.id;
  }

  // Put an item where the server would list it. In the paged main list an item that sorts
  // after the last loaded one is left out: it arrives with a later page, in its place.
  function placeItem(list, item, paged) {
    const others = itemsOf(list).filter((other) => other !== item);
    const before = others.find((other) => comesBefore(item, other)) || null;
    if (!before && paged && state.next !== null) {
      item.remove();
      return false;
    }
    let next = item.nextElementSibling;
    while (next && !next.classList.contains("conversation-item")) next = next.nextElementSibling;
    if (item.parentNode === list && next === before) return true; // Already there (a repeated frame).
    // Moving a node drops the focus inside it: give it back (keyboard users keep their place).
    const focused = item.contains(document.activeElement) ? document.activeElement : null;
    list.insertBefore(item, before);
    if (focused) focused.focus();
    return true;
  }

  function dayStart(value) {
    return new Date(value.getFullYear(), value.getMonth(), value.getDate());
  }

  const monthFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    month: "long",
    year: "numeric",
  });

  function groupLabel(item, now) {
    if (item.dataset.pinned === "1") return gettext("Pinned");
    const date = new Date(item.dataset.updated || now);
    if (Number.isNaN(date.getTime())) return gettext("Today");
    const days = Math.round((dayStart(now) - dayStart(date)) / DAY_MS);
    if (days <= 0) return gettext("Today");
    if (days === 1) return gettext("Yesterday");
    if (days <= 7) return gettext("Previous 7 days");
    if (days <= 30) return gettext("Previous 30 days");
    return monthFormat.format(date);
  }

  // Insert "Pinned", "Today", "Yesterday"... headings; the items are already in order.
  function regroupConversations() {
    for (const heading of dom.list.querySelectorAll(".conversation-group")) heading.remove();
    const now = new Date();
    let previous = null;
    for (const item of conversationItems()) {
      const label = groupLabel(item, now);
      if (label !== previous) {
        // A list item of its own (a list may only hold items): read as "Today", then its chats.
        const heading = document.createElement("li");
        heading.className = "conversation-group";
        heading.textContent = label;
        dom.list.insertBefore(heading, item);
        previous = label;
      }
    }
    dom.listEmpty.hidden = conversationItems().length > 0;
    if (dom.archivedEmpty && state.archivedLoaded) {
      dom.archivedEmpty.hidden = itemsOf(dom.archivedList).length > 0;
    }
    if (dom.sharedSection) dom.sharedSection.hidden = itemsOf(dom.sharedList).length === 0;
  }

  function setActiveConversation(id) {
    state.activeId = id === null || id === undefined ? null : String(id);
    for (const list of [dom.list, dom.archivedList, dom.sharedList]) {
      for (const item of itemsOf(list)) markActive(item);
    }
  }

  // The conversation view: the person just started a chat in this tab.
  function addConversationItem(id, title) {
    state.activeId = String(id);
    const item = findConversationItem(id) || newItem();
    fillItem(item, { id: String(id), title, updated_at: new Date().toISOString() });
    placeItem(dom.list, item, false);
    setActiveConversation(id);
    regroupConversations();
  }

  // A new message makes the chat the most recent one: move it up, as the server will.
  function bumpConversationItem(id) {
    const item = findConversationItem(id);
    if (!item) return;
    item.dataset.updated = new Date().toISOString();
    placeItem(dom.list, item, false);
    regroupConversations();
  }

  function applyConversationTitle(id, title) {
    for (const list of [dom.list, dom.archivedList, dom.sharedList]) {
      const item = findIn(list, id);
      if (item) item.querySelector(".conversation-title").textContent = untitled(title);
    }
  }

  function removeConversation(id) {
    for (const list of [dom.list, dom.archivedList, dom.sharedList]) {
      const item = findIn(list, id);
      if (item) item.remove();
    }
    if (state.menuItem && state.menuItem.dataset.id === String(id)) closeMenu(false);
    regroupConversations();
  }

  // Pinned/archived changed (here, in another tab, or by the server): move the item.
  function applyFlags(conversation) {
    const id = String(conversation.id);
    const item = findIn(dom.list, id) || findIn(dom.archivedList, id);
    if (!item) {
      // Not loaded here (an older chat unarchived or pinned elsewhere): ask for the top page.
      if (!conversation.archived) scheduleRefresh();
      return;
    }
    fillItem(item, conversation);
    if (item.dataset.archived === "1") {
      if (state.archivedLoaded) placeItem(dom.archivedList, item, false);
      else item.remove();
    } else {
      placeItem(dom.list, item, true);
    }
    regroupConversations();
  }

  // Merge a page from GET /c/list/ into a list: update known items, add the new ones.
  function mergeItems(list, items, paged, append) {
    for (const conversation of items) {
      let item = findIn(list, conversation.id);
      const known = Boolean(item);
      if (!item) item = newItem();
      fillItem(item, conversation);
      if (append && !known) list.append(item);
      else placeItem(list, item, paged && !append);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Paging: the next page when the end of the list scrolls into view
  // ---------------------------------------------------------------------------------------

  async function loadMore() {
    if (state.loading || state.next === null) return;
    state.loading = true;
    dom.retry.hidden = true;
    const cursor = state.next;
    const result = await request(`${urls.list}?after=${encodeURIComponent(cursor)}`, { quiet: true });
    state.loading = false;
    if (!result.ok || !result.data) {
      dom.retry.hidden = false;
      return;
    }
    // A refresh may have moved the cursor meanwhile: keep the newer answer only.
    if (state.next !== cursor) return;
    const items = result.data.items || [];
    const known = new Set(conversationItems().map((item) => item.dataset.id));
    mergeItems(
      dom.list,
      items.filter((conversation) => !known.has(String(conversation.id))),
      true,
      true,
    );
    state.next = result.data.next || null;
    dom.sentinel.hidden = state.next === null;
    regroupConversations();
    // Observers report changes only: if the sentinel is still in view, look again.
    if (observer && state.next !== null) {
      observer.unobserve(dom.sentinel);
      observer.observe(dom.sentinel);
    }
  }

  const observer =
    "IntersectionObserver" in window && dom.sentinel
      ? new window.IntersectionObserver(
          (entries) => {
            if (entries.some((entry) => entry.isIntersecting)) loadMore();
          },
          { root: dom.nav, rootMargin: "0px 0px 240px 0px" },
        )
      : null;
  if (observer) observer.observe(dom.sentinel);
  else if (dom.nav) {
    dom.nav.addEventListener("scroll", () => {
      if (dom.nav.scrollTop + dom.nav.clientHeight > dom.nav.scrollHeight - 240) loadMore();
    });
  }
  dom.retry.addEventListener("click", loadMore);

  // The first page again, merged in: for chats this tab has not seen (created, unarchived or
  // pinned in another tab). One request however many frames arrive together.
  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(async () => {
      const result = await request(urls.list, { quiet: true });
      if (!result.ok || !result.data) return;
      mergeItems(dom.list, result.data.items || [], true, false);
      regroupConversations();
    }, REFRESH_DELAY_MS);
  }

  // ---------------------------------------------------------------------------------------
  // Archived chats: a disclosure, loaded when first opened
  // ---------------------------------------------------------------------------------------

  async function loadArchived() {
    if (state.archivedLoading) return;
    state.archivedLoading = true;
    const after = state.archivedNext ? `&after=${encodeURIComponent(state.archivedNext)}` : "";
    const result = await request(`${urls.list}?archived=1${after}`);
    state.archivedLoading = false;
    if (!result.ok || !result.data) return;
    state.archivedLoaded = true;
    const known = new Set(itemsOf(dom.archivedList).map((item) => item.dataset.id));
    mergeItems(
      dom.archivedList,
      (result.data.items || []).filter((conversation) => !known.has(String(conversation.id))),
      false,
      true,
    );
    state.archivedNext = result.data.next || null;
    dom.archivedMore.hidden = state.archivedNext === null;
    regroupConversations();
  }

  if (dom.archivedToggle) {
    dom.archivedToggle.addEventListener("click", () => {
      const open = dom.archivedToggle.getAttribute("aria-expanded") !== "true";
      dom.archivedToggle.setAttribute("aria-expanded", open ? "true" : "false");
      dom.archivedPanel.hidden = !open;
      if (open && !state.archivedLoaded) loadArchived();
    });
    dom.archivedMore.addEventListener("click", loadArchived);
  }

  // ---------------------------------------------------------------------------------------
  // Shared with me, projects
  // ---------------------------------------------------------------------------------------

  function addShared(id, title, owner) {
    let item = findIn(dom.sharedList, id);
    const isNew = !item;
    if (!item) item = dom.tplShared.content.querySelector(".conversation-item").cloneNode(true);
    item.dataset.id = String(id);
    item.querySelector(".conversation-link").href = conversationUrl("conversation", id);
    item.querySelector(".conversation-title").textContent = untitled(title);
    if (owner) {
      item.querySelector(".conversation-owner").textContent = interpolate(
        gettext("from %(owner)s"),
        { owner },
        true,
      );
    }
    markActive(item);
    if (isNew) dom.sharedList.prepend(item);
    regroupConversations();
    return isNew;
  }

  // The folder drawing of a project row, as the server renders it.
  function folderIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon icon-sm");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z");
    svg.append(path);
    return svg;
  }

  function projectItems() {
    return dom.projectList ? [...dom.projectList.querySelectorAll(".project-item")] : [];
  }

  function projects() {
    return projectItems().map((item) => ({
      id: item.dataset.projectId,
      name: item.querySelector(".project-name").textContent,
    }));
  }

  function findProject(id) {
    return projectItems().find((item) => item.dataset.projectId === String(id)) || null;
  }

  function setProject(id, name) {
    if (!dom.projectList) return;
    let item = findProject(id);
    if (!item) {
      item = document.createElement("li");
      item.className = "project-item";
      item.dataset.projectId = String(id);
      const link = document.createElement("a");
      link.className = "project-link";
      link.href = urlFor(urls.project, { project_id: id });
      const label = document.createElement("span");
      label.className = "project-name";
      link.append(folderIcon());
      link.append(label);
      item.append(link);
    }
    if (typeof name === "string" && name) item.querySelector(".project-name").textContent = name;
    // Keep the list by name, as the server renders it.
    const label = item.querySelector(".project-name").textContent;
    const others = projectItems().filter((other) => other !== item);
    const before =
      others.find(
        (other) => other.querySelector(".project-name").textContent.localeCompare(label) > 0,
      ) || null;
    dom.projectList.insertBefore(item, before);
    for (const conversation of document.querySelectorAll(
      ".conversation-item[data-project-id]",
    )) {
      if (conversation.dataset.projectId === String(id)) setItemProject(conversation, id, label);
    }
  }

  function dropProject(id, deleted) {
    const item = findProject(id);
    if (item) item.remove();
    if (!deleted) return;
    // A deleted project leaves its chats without one (the server sets it to null).
    for (const conversation of document.querySelectorAll(".conversation-item[data-project-id]")) {
      if (conversation.dataset.projectId === String(id)) setItemProject(conversation, "", "");
    }
  }

  // ---------------------------------------------------------------------------------------
  // Frames from the socket (dispatched by main.js): every open tab stays true
  // ---------------------------------------------------------------------------------------

  function onConversationFrame(frame) {
    if (!frame || frame.id === undefined || frame.id === null) return;
    const id = String(frame.id);
    switch (frame.action) {
      case "renamed":
        if (typeof frame.title === "string") applyConversationTitle(id, frame.title);
        break;
      case "deleted":
        // If it is the open one, the conversation view tells the person and leaves.
        removeConversation(id);
        break;
      case "moved":
        for (const item of ownItems(id)) {
          setItemProject(item, frame.project || "", frame.project_name || "");
        }
        break;
      case "flags":
        applyFlags({ id, pinned: Boolean(frame.pinned), archived: Boolean(frame.archived) });
        break;
      case "created":
        // The frame does not say whose it is (project members hear it too): the list does.
        if (!findConversationItem(id)) scheduleRefresh();
        break;
      case "shared":
        if (addShared(id, frame.title || "", frame.by || "")) {
          toast(
            interpolate(
              gettext("%(user)s shared “%(title)s” with you."),
              { user: frame.by || gettext("Someone"), title: untitled(frame.title) },
              true,
            ),
            "info",
          );
        }
        break;
      case "unshared": {
        const item = findIn(dom.sharedList, id);
        if (item) item.remove();
        regroupConversations();
        break;
      }
      default:
        break;
    }
  }

  function onProjectFrame(frame) {
    if (!frame || !frame.id) return;
    if (frame.action === "added" || frame.action === "renamed") setProject(frame.id, frame.name);
    else if (frame.action === "removed") dropProject(frame.id, false);
    else if (frame.action === "deleted") dropProject(frame.id, true);
  }

  window.addEventListener("chat:conversation", (event) => onConversationFrame(event.detail));
  window.addEventListener("chat:project", (event) => onProjectFrame(event.detail));
  window.addEventListener("chat:title", (event) => {
    const detail = event.detail || {};
    if (detail.id && typeof detail.title === "string") applyConversationTitle(detail.id, detail.title);
  });

  // ---------------------------------------------------------------------------------------
  // Rename, delete, pin, archive, move
  // ---------------------------------------------------------------------------------------

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
      const button = item.querySelector(".conversation-menu-button");
      if (button && !save) button.focus();
      if (!save || !value || value === previous) return;
      titleEl.textContent = value; // Optimistic; put back below if the server refuses.
      const result = await post(conversationUrl("rename", id), { title: value });
      if (result.ok) {
        const title = (result.data && result.data.title) || value;
        applyConversationTitle(id, title);
        if (hooks.onTitle) hooks.onTitle(id, title);
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
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
  }

  function confirmDelete(title) {
    const text = interpolate(
      gettext(
        "“%(title)s” and all its messages will be deleted, also for everyone it is shared with. This cannot be undone.",
      ),
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
    const result = await post(conversationUrl("delete", id));
    if (!result.ok) return;
    if (String(id) === state.activeId) {
      window.location.assign(urls.home);
      return;
    }
    removeConversation(id);
    toast(gettext("Chat deleted."), "info");
  }

  async function setFlags(item, flags) {
    const result = await post(conversationUrl("flags", item.dataset.id), flags);
    if (result.ok && result.data) {
      applyFlags(result.data);
      if (flags.archived === true) toast(gettext("Chat archived."), "info");
    }
  }

  function openMoveDialog(item) {
    if (!dom.moveDialog || typeof dom.moveDialog.showModal !== "function") return;
    state.moveItem = item;
    const current = item.dataset.projectId || "";
    dom.moveText.textContent = interpolate(
      gettext("Where should “%(title)s” go?"),
      { title: item.querySelector(".conversation-title").textContent },
      true,
    );
    for (const option of dom.moveOptions.querySelectorAll(".move-option[data-project-id]")) {
      option.remove();
    }
    for (const project of projects()) {
      const label = document.createElement("label");
      label.className = "move-option";
      label.dataset.projectId = project.id;
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "project";
      input.value = project.id;
      const name = document.createElement("span");
      name.textContent = project.name;
      label.append(input, " ", name);
      dom.moveOptions.append(label);
    }
    for (const input of dom.moveOptions.querySelectorAll("input[name=project]")) {
      input.checked = input.value === current;
    }
    dom.moveError.hidden = true;
    dom.moveError.textContent = "";
    dom.moveDialog.returnValue = "";
    dom.moveDialog.showModal();
    const checked = dom.moveOptions.querySelector("input:checked");
    if (checked) checked.focus();
  }

  if (dom.moveForm) {
    dom.moveForm.addEventListener("submit", async (event) => {
      if (!event.submitter || event.submitter.value !== "move") return; // Cancel closes it.
      event.preventDefault();
      const item = state.moveItem;
      if (!item) return;
      const checked = dom.moveOptions.querySelector("input[name=project]:checked");
      const project = checked && checked.value ? checked.value : null;
      const submit = event.submitter;
      submit.disabled = true;
      const result = await post(conversationUrl("move", item.dataset.id), { project }, { quiet: true });
      submit.disabled = false;
      if (!result.ok) {
        dom.moveError.textContent = result.error;
        dom.moveError.hidden = false;
        return;
      }
      if (result.data) for (const own of ownItems(item.dataset.id)) fillItem(own, result.data);
      dom.moveDialog.close("moved");
      toast(
        project
          ? interpolate(
              gettext("Moved to “%(project)s”."),
              { project: (checked.parentElement.textContent || "").trim() },
              true,
            )
          : gettext("Removed from its project."),
        "info",
      );
    });
  }

  // ---------------------------------------------------------------------------------------
  // The per-chat menu ("…"): a popup menu, keyboard first, like ChatGPT's
  // ---------------------------------------------------------------------------------------

  function menuEntries() {
    return [...dom.menu.querySelectorAll(".item-menu-entry")].filter((entry) => !entry.hidden);
  }

  function openMenu(button) {
    const item = button.closest(".conversation-item");
    if (!item || !dom.menu) return;
    if (state.menuButton === button) {
      closeMenu(true);
      return;
    }
    closeMenu(false);
    const id = item.dataset.id;
    const pinned = item.dataset.pinned === "1";
    const archived = item.dataset.archived === "1";
    const show = {
      rename: true,
      pin: !pinned && !archived,
      unpin: pinned && !archived,
      move: true,
      share: true,
      "export-md": true,
      "export-json": true,
      archive: !archived,
      unarchive: archived,
      delete: true,
    };
    for (const entry of dom.menu.querySelectorAll(".item-menu-entry")) {
      entry.hidden = !show[entry.dataset.action];
      entry.tabIndex = -1;
    }
    dom.menu.querySelector('[data-action="export-md"]').href = conversationUrl("export_md", id);
    dom.menu.querySelector('[data-action="export-json"]').href = conversationUrl("export_json", id);
    state.menuItem = item;
    state.menuButton = button;
    button.setAttribute("aria-expanded", "true");
    item.classList.add("has-menu");
    dom.menu.hidden = false;
    positionMenu(button);
    const first = menuEntries()[0];
    if (first) first.focus();
  }

  function positionMenu(button) {
    const rect = button.getBoundingClientRect();
    const width = dom.menu.offsetWidth;
    const height = dom.menu.offsetHeight;
    let top = rect.bottom + 4;
    if (top + height > window.innerHeight - 8) top = Math.max(8, rect.top - height - 4);
    let left = rect.left;
    if (left + width > window.innerWidth - 8) left = Math.max(8, window.innerWidth - width - 8);
    dom.menu.style.top = `${Math.round(top)}px`;
    dom.menu.style.left = `${Math.round(left)}px`;
  }

  function closeMenu(focusButton) {
    if (!dom.menu || dom.menu.hidden) return;
    dom.menu.hidden = true;
    const button = state.menuButton;
    if (button) button.setAttribute("aria-expanded", "false");
    if (state.menuItem) state.menuItem.classList.remove("has-menu");
    state.menuItem = null;
    state.menuButton = null;
    if (focusButton && button && button.isConnected) button.focus();
  }

  function runMenuAction(action) {
    const item = state.menuItem;
    if (!item) return;
    closeMenu(action !== "rename");
    switch (action) {
      case "rename":
        startRename(item);
        break;
      case "pin":
        setFlags(item, { pinned: true });
        break;
      case "unpin":
        setFlags(item, { pinned: false });
        break;
      case "archive":
        setFlags(item, { archived: true });
        break;
      case "unarchive":
        setFlags(item, { archived: false });
        break;
      case "move":
        openMoveDialog(item);
        break;
      case "share":
        window.dispatchEvent(
          new window.CustomEvent("chat:share-open", {
            detail: { id: item.dataset.id, title: item.querySelector(".conversation-title").textContent },
          }),
        );
        break;
      case "delete":
        deleteConversation(item);
        break;
      default:
        break;
    }
  }

  if (dom.menu) {
    dom.menu.addEventListener("click", (event) => {
      const entry = event.target.closest(".item-menu-entry");
      if (!entry) return;
      const action = entry.dataset.action;
      // Export links download on their own; the menu just closes.
      if (action === "export-md" || action === "export-json") {
        closeMenu(true);
        return;
      }
      event.preventDefault();
      runMenuAction(action);
    });
    dom.menu.addEventListener("keydown", (event) => {
      const entries = menuEntries();
      const index = entries.indexOf(document.activeElement);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        entries[(index + step + entries.length) % entries.length].focus();
      } else if (event.key === "Home" || event.key === "End") {
        event.preventDefault();
        entries[event.key === "Home" ? 0 : entries.length - 1].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        closeMenu(true);
      } else if (event.key === "Tab") {
        closeMenu(true);
      }
    });
    document.addEventListener("pointerdown", (event) => {
      if (dom.menu.hidden) return;
      if (dom.menu.contains(event.target) || event.target.closest(".conversation-menu-button")) return;
      closeMenu(false);
    });
    window.addEventListener("resize", () => closeMenu(false));
    if (dom.nav) dom.nav.addEventListener("scroll", () => closeMenu(false), { passive: true });
  }

  dom.sidebar.addEventListener("click", (event) => {
    const button = event.target.closest(".conversation-menu-button");
    if (button) {
      event.preventDefault();
      openMenu(button);
    }
  });
  dom.sidebar.addEventListener("keydown", (event) => {
    const button = event.target.closest(".conversation-menu-button");
    if (button && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      if (state.menuButton !== button) openMenu(button);
    }
  });

  // ---------------------------------------------------------------------------------------
  // Search: a plain GET form to /search/ (Enter), with live results from /search.json
  // ---------------------------------------------------------------------------------------

  const searchDom = {
    results: byId("sidebar-search-results"),
    list: byId("sidebar-search-list"),
    empty: byId("sidebar-search-empty"),
  };
  const search = { timer: null, seq: 0 };

  function closeSearch() {
    clearTimeout(search.timer);
    search.seq += 1; // An answer still on its way is dropped.
    if (searchDom.results) searchDom.results.hidden = true;
  }

  function searchResultItem(result) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.className = "search-result";
    link.href = result.url || conversationUrl("conversation", result.conversation_id);
    const title = document.createElement("span");
    title.className = "search-result-title";
    title.textContent = untitled(result.title);
    const snippet = document.createElement("span");
    snippet.className = "search-result-snippet";
    for (const part of result.parts || [{ text: result.snippet || "", hit: false }]) {
      if (part.hit) {
        const mark = document.createElement("mark");
        mark.textContent = part.text;
        snippet.append(mark);
      } else {
        snippet.append(document.createTextNode(part.text));
      }
    }
    link.append(title, snippet);
    item.append(link);
    return item;
  }

  async function runSearch(query) {
    const seq = ++search.seq;
    const result = await request(
      `${urls.search_json}?q=${encodeURIComponent(query)}&limit=${SEARCH_LIMIT}`,
      { quiet: true },
    );
    if (seq !== search.seq || !result.ok || !result.data) return;
    const results = result.data.results || [];
    searchDom.list.replaceChildren(...results.map(searchResultItem));
    searchDom.empty.hidden = results.length > 0;
    searchDom.results.hidden = false;
  }

  if (dom.search && dom.searchInput) {
    dom.search.addEventListener("submit", (event) => {
      if (!dom.searchInput.value.trim()) event.preventDefault();
    });
    if (searchDom.results) {
      dom.searchInput.addEventListener("input", () => {
        const query = dom.searchInput.value.trim();
        clearTimeout(search.timer);
        if (query.length < 2) {
          closeSearch();
          return;
        }
        search.timer = setTimeout(() => runSearch(query), SEARCH_DELAY_MS);
      });
      dom.search.addEventListener("keydown", (event) => {
        const links = [...searchDom.list.querySelectorAll(".search-result")];
        const index = links.indexOf(document.activeElement);
        if (event.key === "Escape" && !searchDom.results.hidden) {
          event.preventDefault();
          event.stopPropagation();
          closeSearch();
          dom.searchInput.focus();
        } else if (event.key === "ArrowDown" && links.length && !searchDom.results.hidden) {
          event.preventDefault();
          links[Math.min(index + 1, links.length - 1)].focus();
        } else if (event.key === "ArrowUp" && index >= 0) {
          event.preventDefault();
          if (index === 0) dom.searchInput.focus();
          else links[index - 1].focus();
        }
      });
      dom.search.addEventListener("focusout", (event) => {
        if (!dom.search.contains(event.relatedTarget)) closeSearch();
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Drawer (phones) and collapse (desktop)
  // ---------------------------------------------------------------------------------------

  const mobileQuery = window.matchMedia("(max-width: 768px)");
  const root = document.documentElement;

  function syncSidebarToggle() {
    if (!dom.sidebarToggle) return;
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

  if (dom.sidebarToggle) dom.sidebarToggle.addEventListener("click", toggleSidebar);
  if (dom.sidebarClose) dom.sidebarClose.addEventListener("click", toggleSidebar);
  if (dom.backdrop) dom.backdrop.addEventListener("click", () => setDrawer(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.classList.contains("sidebar-open")) setDrawer(false);
  });
  mobileQuery.addEventListener("change", () => {
    root.classList.remove("sidebar-open");
    closeMenu(false);
    syncSidebarToggle();
  });

  // ---------------------------------------------------------------------------------------
  // Keyboard: between conversations
  // ---------------------------------------------------------------------------------------

  // Every conversation link shown, top to bottom (shared, own, archived when open).
  function conversationLinks() {
    return [...dom.nav.querySelectorAll(".conversation-item:not(.is-editing) > .conversation-link")].filter(
      (link) => !link.closest("[hidden]"),
    );
  }

  dom.nav.addEventListener("keydown", (event) => {
    const link = event.target.closest(".conversation-link");
    if (!link || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const links = conversationLinks();
    const index = links.indexOf(link);
    if (index === -1) return;
    let target = null;
    if (event.key === "ArrowDown") target = links[Math.min(index + 1, links.length - 1)];
    else if (event.key === "ArrowUp") target = links[Math.max(index - 1, 0)];
    else if (event.key === "Home") target = links[0];
    else if (event.key === "End") target = links[links.length - 1];
    if (!target) return;
    event.preventDefault();
    target.focus();
  });

  // Alt+ArrowUp / Alt+ArrowDown: open the conversation above or below the open one.
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const field = event.target.closest && event.target.closest("input, textarea");
    if (field && field.value.trim() && field.id !== "sidebar-search-input") return; // Typed text would be lost.
    const links = conversationLinks();
    if (!links.length) return;
    const current = links.findIndex((link) => link.getAttribute("aria-current") === "page");
    const step = event.key === "ArrowDown" ? 1 : -1;
    let index = current === -1 ? (step > 0 ? 0 : links.length - 1) : current + step;
    index = Math.max(0, Math.min(links.length - 1, index));
    event.preventDefault();
    if (index === current) return;
    links[index].focus();
    window.location.assign(links[index].href);
  });

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------

  if (storageGet(STORAGE_SIDEBAR) === "1") root.classList.add("sidebar-collapsed");
  syncSidebarToggle();
  regroupConversations();

  return {
    addConversationItem,
    bumpConversationItem,
    setActiveConversation,
    applyConversationTitle,
    // The conversation view: told (id, title) after a rename made in the sidebar.
    set onTitle(callback) {
      hooks.onTitle = callback;
    },
  };
}
