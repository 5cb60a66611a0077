// The chat header, from the store's state: the title (and the tab's), the project crumb, the
// Share button (owners only) and the connection badge.

import { gettext } from "./i18n.js";
import { urlFor } from "./http.js";

// A first connect is usually instant: only mention it if it is not.
const CONNECTING_NOTICE_MS = 1000;

export function createHeader({ window, urls, onShare }) {
  const document = window.document;
  const byId = (id) => document.getElementById(id);
  const dom = {
    title: byId("chat-title"),
    share: byId("share-button"),
    connection: byId("connection-status"),
    crumb: byId("project-crumb"),
    crumbName: document.querySelector("#project-crumb .chat-crumb-name"),
    crumbSeparator: document.querySelector(".chat-crumb-separator"),
  };
  const brand = document.title.split(" · ").pop();
  let connectingTimer = null;

  function renderConnection(status) {
    window.clearTimeout(connectingTimer);
    dom.connection.dataset.state = status;
    if (status === "open" || status === "closed") {
      dom.connection.hidden = true;
    } else if (status === "reconnecting") {
      dom.connection.textContent = gettext("Reconnecting…");
      dom.connection.hidden = false;
    } else {
      connectingTimer = window.setTimeout(() => {
        dom.connection.textContent = gettext("Connecting…");
        dom.connection.hidden = false;
      }, CONNECTING_NOTICE_MS);
    }
  }

  function renderProject(project) {
    dom.crumb.hidden = !project;
    dom.crumbSeparator.hidden = !project;
    if (project) {
      dom.crumb.href = urlFor(urls.project, { project_id: project.id });
      dom.crumbName.textContent = project.name;
    } else {
      dom.crumb.removeAttribute("href");
      dom.crumbName.textContent = "";
    }
  }

  function render(state, previous = null) {
    if (!previous || state.title !== previous.title) {
      // The server rendered the first title ("New chat" when it has none): keep it until one comes.
      if (previous) {
        dom.title.textContent = state.title;
        document.title = state.title ? `${state.title} · ${brand}` : brand;
      }
    }
    if (!previous || state.project !== previous.project) renderProject(state.project);
    const noShare = !state.conversationId || state.access !== "owner";
    if (dom.share.hidden !== noShare) dom.share.hidden = noShare;
    if (!previous || state.connection !== previous.connection) {
      if (previous) renderConnection(state.connection);
    }
  }

  // share.js owns the dialog; this page only asks for it.
  dom.share.addEventListener("click", () => onShare());

  return { render };
}
