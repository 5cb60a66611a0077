// Users and groups pages, and the model access picker: name suggestions fetched from the
// server as you type (never a list of every user), copy buttons, confirmations. No inline
// script (CSP).
(function () {
  "use strict";

  // <input data-search-url data-search-kind data-search-multi=" " list="...">: fills its
  // datalist with what /admin/users/search/ suggests for the name being typed. With
  // data-search-multi, the input holds several names: only the last one is searched, and a
  // suggestion keeps the names before it.
  document.querySelectorAll("input[data-search-url]").forEach(function (input) {
    const list = input.list;
    if (!list) return;
    const separator = input.dataset.searchMulti || "";
    let timer = 0;
    let controller = null;

    function split(value) {
      if (!separator) return { head: "", last: value };
      const pattern = separator === " " ? /[\s,]+/ : /,/;
      const parts = value.split(pattern);
      const last = parts.pop() || "";
      const head = value.slice(0, value.length - last.length);
      return { head: head, last: last.trim() };
    }

    function fill(items, head) {
      list.replaceChildren();
      items.forEach(function (item) {
        const option = document.createElement("option");
        option.value = head + item.value + (separator === "," ? ", " : separator);
        if (item.label) option.label = item.label;  // text, never markup
        list.appendChild(option);
      });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      const parts = split(input.value);
      if (parts.last.length < 1) { fill([], ""); return; }
      timer = window.setTimeout(function () {
        if (controller) controller.abort();
        controller = new AbortController();
        const url = input.dataset.searchUrl + "?kind=" + encodeURIComponent(input.dataset.searchKind || "users") +
          "&q=" + encodeURIComponent(parts.last);
        fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", signal: controller.signal })
          .then(function (response) { return response.ok ? response.json() : { items: [] }; })
          .then(function (data) { fill(data.items || [], parts.head); })
          .catch(function () { /* aborted by the next keystroke, or offline: no suggestions */ });
      }, 150);
    });
  });

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const input = document.querySelector(button.dataset.copy);
      if (!input) return;
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).catch(function () { document.execCommand("copy"); });
      } else {
        document.execCommand("copy");  // plain-HTTP installs have no async clipboard API
      }
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Filters apply as soon as a select changes.
  const filters = document.getElementById("user-filters");
  if (filters) {
    filters.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { filters.requestSubmit(); });
    });
  }

  const once = document.querySelector(".dir-once input");
  if (once) once.select();
})();
