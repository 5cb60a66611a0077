// Admin models page: live pull progress over /ws/admin/models/, the "does it fit?" estimate,
// refreshing the model table when models change, and confirmations for destructive forms.
// The page works without this script (plain forms); this adds the live parts.
(function () {
  "use strict";

  const gettext = typeof window.gettext === "function" ? window.gettext : (text) => text;
  const fmt = typeof window.interpolate === "function"
    ? (text, values) => window.interpolate(text, values, true)
    : (text, values) => text.replace(/%\((\w+)\)s/g, (_m, key) => String(values[key]));

  const main = document.getElementById("main");
  const pullList = document.getElementById("pull-list");
  if (!main || !pullList) return;

  const STATUS_LABELS = {
    queued: gettext("Queued"),
    running: gettext("Running"),
    succeeded: gettext("Succeeded"),
    failed: gettext("Failed"),
    cancelled: gettext("Cancelled"),
  };
  const ACTIVE = new Set(["queued", "running"]);

  function formatBytes(bytes) {
    if (bytes === null || bytes === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    // Same as models_admin.fit.format_bytes: "93.8 MiB", "1 GiB", "16 GiB".
    const text = value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1).replace(/\.0$/, "");
    return `${text} ${units[unit]}`;
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return fmt(gettext("%(s)s s left"), { s: s });
    const m = Math.floor(s / 60);
    if (m < 60) return fmt(gettext("%(m)s min %(s)s s left"), { m: m, s: s % 60 });
    return fmt(gettext("%(h)s h %(m)s min left"), { h: Math.floor(m / 60), m: m % 60 });
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // ---- Pull rows -------------------------------------------------------------------------
  function rowFor(pull) {
    let row = pullList.querySelector(`[data-pull-id="${pull.id}"]`);
    if (row) return row;
    const template = document.getElementById("pull-template");
    row = template.content.firstElementChild.cloneNode(true);
    row.dataset.pullId = String(pull.id);
    row.querySelector(".ma-pull-cancel").action = `/admin/models/pull/${pull.id}/cancel/`;
    pullList.prepend(row);
    document.getElementById("pull-empty").hidden = true;
    return row;
  }

  function renderPull(pull) {
    const row = rowFor(pull);
    const previous = row.dataset.status;
    row.dataset.status = pull.status;
    row.querySelector(".ma-pull-model").textContent = pull.model_name;
    row.querySelector(".ma-pull-source").textContent = pull.source;
    const badge = row.querySelector(".ma-pull-status");
    badge.textContent = STATUS_LABELS[pull.status] || pull.status;
    badge.className = `badge ma-pull-status ma-status-${pull.status}`;

    const active = ACTIVE.has(pull.status);
    const bar = row.querySelector(".ma-progress");
    bar.hidden = !active;
    if (pull.total) {
      bar.max = pull.total;
      bar.value = Math.min(pull.completed, pull.total);
    } else {
      bar.removeAttribute("value"); // indeterminate until the size is known
    }
    row.querySelector(".ma-pull-detail").textContent = pull.detail || "";
    row.querySelector(".ma-pull-bytes").textContent = pull.total
      ? `${formatBytes(pull.completed)} / ${formatBytes(pull.total)} (${Math.floor((100 * pull.completed) / pull.total)} %)`
      : pull.completed ? formatBytes(pull.completed) : "";
    row.querySelector(".ma-pull-speed").textContent =
      active && pull.speed_bps > 0 ? `${formatBytes(pull.speed_bps)}/s` : "";
    row.querySelector(".ma-pull-eta").textContent = active ? formatDuration(pull.eta_seconds) : "";
    const error = row.querySelector(".ma-pull-error");
    error.textContent = pull.error || "";
    error.hidden = !pull.error;

    if (pull.status === "succeeded" && previous && previous !== "succeeded") refreshTable();
  }

  // ---- Model table -----------------------------------------------------------------------
  let refreshing = null;
  function refreshTable() {
    if (refreshing) return;
    refreshing = fetch(main.dataset.tableUrl, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const current = document.getElementById("models-table");
        const holder = document.createElement("div");
        holder.innerHTML = html; // our own server-rendered, auto-escaped fragment
        const fresh = holder.querySelector("#models-table");
        if (current && fresh) current.replaceWith(fresh);
      })
      .catch(() => {})
      .finally(() => {
        refreshing = null;
      });
  }

  // ---- Socket ----------------------------------------------------------------------------
  const live = document.getElementById("live-status");
  let attempt = 0;
  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${main.dataset.socketPath}`);
    socket.addEventListener("open", () => {
      attempt = 0;
      live.hidden = false;
    });
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (event.type === "pull") renderPull(event.pull);
      else if (event.type === "models") refreshTable();
    });
    socket.addEventListener("close", (event) => {
      live.hidden = true;
      if (event.code === 4403) return; // not an admin (any more): do not retry
      attempt += 1;
      window.setTimeout(connect, Math.min(15000, 500 * 2 ** attempt));
    });
  }
  connect();

  // ---- Does it fit? ----------------------------------------------------------------------
  const result = document.getElementById("estimate-result");

  // The verdict's numbers are for all requested chats when they fit, else for as many as fit.
  function chatsEstimated(data) {
    return data.status === "fits" ? data.parallel : Math.max(1, Math.min(data.max_parallel || 0, data.parallel));
  }

  function renderEstimate(data) {
    result.hidden = false;
    result.replaceChildren();
    if (data.error) {
      result.dataset.status = "error";
      result.textContent = data.error;
      return;
    }
    result.dataset.status = data.status;
    const headline = document.createElement("strong");
    headline.textContent = data.message;
    result.append(headline);
    if (data.total_bytes === null) return;
    const list = document.createElement("dl");
    const facts = data.facts || {};
    const rows = [
      [gettext("Model"), [facts.family, facts.parameter_size, facts.quantization, facts.format].filter(Boolean).join(" · ")],
      [gettext("Download"), facts.file_size ? formatBytes(facts.file_size) : ""],
      [gettext("Weights"), formatBytes(data.weights_bytes)],
      [gettext("KV cache"), fmt(gettext("%(size)s for %(n)s × %(ctx)s tokens"), {
        size: formatBytes(data.kv_cache_bytes), n: chatsEstimated(data), ctx: data.context_length,
      })],
      [gettext("Buffers"), formatBytes(data.overhead_bytes)],
      [gettext("Total"), fmt(gettext("%(total)s of %(available)s"), { total: formatBytes(data.total_bytes), available: formatBytes(data.available_bytes) })],
      [gettext("Engine"), data.backend === "vllm" ? "vLLM" : gettext("embedded (llama.cpp)")],
    ];
    for (const [label, value] of rows) {
      if (!value) continue;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    result.append(list);
  }

  function estimate(source) {
    const body = new FormData();
    body.set("source", source);
    const context = document.getElementById("estimate-context").value;
    const parallel = document.getElementById("estimate-parallel").value;
    if (context) body.set("context_length", context);
    if (parallel) body.set("parallel", parallel);
    result.hidden = false;
    result.dataset.status = "";
    result.textContent = gettext("Reading the model's header…");
    fetch(main.dataset.estimateUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() },
    })
      .then((response) => response.json())
      .then(renderEstimate)
      .catch(() => renderEstimate({ error: gettext("The estimate failed. Please try again.") }));
  }

  document.getElementById("estimate-button").addEventListener("click", () => {
    const source = document.getElementById("id_source").value.trim();
    if (source) estimate(source);
    else renderEstimate({ error: gettext("Type a model to pull first.") });
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-estimate-source]");
    if (!button) return;
    document.getElementById("id_source").value = button.dataset.estimateSource;
    estimate(button.dataset.estimateSource);
    document.getElementById("pull").scrollIntoView({ behavior: "smooth", block: "start" });
  });

  // ---- Row menus: one open at a time, closed by a click elsewhere or Escape ----------------
  document.addEventListener("click", (event) => {
    for (const menu of document.querySelectorAll("details.ma-menu[open]")) {
      if (!menu.contains(event.target)) menu.open = false;
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of document.querySelectorAll("details.ma-menu[open]")) menu.open = false;
  });

  // ---- Confirmations (delegated: the table is replaced on refresh) ------------------------
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
