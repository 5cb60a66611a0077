// Project pages: "New conversation" (JSON to /c/new/, then open it) and confirmations.
// No inline script (CSP). Messages from the server are shown with textContent, never as markup.
(function () {
  "use strict";

  // The jsi18n catalog loads deferred before this file; fall back to the text as written.
  const gettext = function (text) {
    return typeof window.gettext === "function" ? window.gettext(text) : text;
  };

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    // CSRF_COOKIE_HTTPONLY deployments: any form on the page carries the token too.
    const field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  function showError(message) {
    const box = document.getElementById("project-error");
    if (!box) {
      window.alert(message);
      return;
    }
    box.textContent = message;
    box.hidden = false;
  }

  const button = document.getElementById("new-conversation");
  if (button) {
    button.addEventListener("click", async function () {
      button.disabled = true;
      let response;
      try {
        response = await fetch("/c/new/", {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "X-CSRFToken": csrfToken(),
            "Content-Type": "application/json",
            Accept: "application/json",
          },
          body: JSON.stringify({ project: button.dataset.project }),
        });
      } catch (error) {
        showError(gettext("Cannot reach the server. Check your connection and try again."));
        button.disabled = false;
        return;
      }
      let data = null;
      if ((response.headers.get("Content-Type") || "").includes("application/json")) {
        try {
          data = await response.json();
        } catch (error) {
          data = null;
        }
      }
      if (response.ok && data && typeof data.url === "string" && /^\/c\/[^/]/.test(data.url)) {
        window.location.assign(data.url);
        return;
      }
      if (response.redirected) {
        showError(gettext("Your session has expired. Reload the page and sign in again."));
      } else {
        showError((data && data.error) || gettext("The conversation could not be created. Reload the page and try again."));
      }
      button.disabled = false;
    });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
