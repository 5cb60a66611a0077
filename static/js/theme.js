// Theme: runs in <head>, before first paint, so the page never flashes the wrong colours.
// The effective theme is always written to <html data-theme="light|dark">. A choice made with
// the toggle is kept in localStorage; without one the page follows prefers-color-scheme.
(function () {
  "use strict";

  const STORAGE_KEY = "theme";
  const THEME_COLORS = { light: "#ffffff", dark: "#212121" };
  const root = document.documentElement;
  const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

  function storedTheme() {
    try {
      const value = window.localStorage.getItem(STORAGE_KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (error) {
      return null; // Storage can be disabled (private mode, strict cookie settings).
    }
  }

  function systemTheme() {
    return darkQuery.matches ? "dark" : "light";
  }

  function apply(theme) {
    root.dataset.theme = theme;
    // Code highlighting: two vendored stylesheets, only one of which may apply.
    const light = document.getElementById("hljs-light");
    const dark = document.getElementById("hljs-dark");
    if (light) light.media = theme === "light" ? "all" : "not all";
    if (dark) dark.media = theme === "dark" ? "all" : "not all";
    // base.html has one per OS scheme: the theme chosen with the toggle wins over the OS's.
    for (const meta of document.querySelectorAll('meta[name="theme-color"]')) {
      meta.content = THEME_COLORS[theme];
    }
    for (const button of document.querySelectorAll(".theme-toggle")) {
      button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
    }
  }

  function toggle() {
    const next = root.dataset.theme === "dark" ? "light" : "dark";
    try {
      window.localStorage.setItem(STORAGE_KEY, next);
    } catch (error) {
      // Not persisted, but still switch for this page.
    }
    apply(next);
  }

  apply(storedTheme() || systemTheme());

  // The chat page's collapsed sidebar (chat.js owns the toggle) is applied here too, before
  // first paint, so the layout does not jump on load.
  try {
    if (window.localStorage.getItem("chat.sidebarCollapsed") === "1") {
      root.classList.add("sidebar-collapsed");
    }
  } catch (error) {
    // Storage disabled: the sidebar starts open.
  }

  darkQuery.addEventListener("change", function () {
    if (!storedTheme()) apply(systemTheme());
  });

  // Another tab toggled the theme.
  window.addEventListener("storage", function (event) {
    if (event.key === STORAGE_KEY) apply(storedTheme() || systemTheme());
  });

  document.addEventListener("DOMContentLoaded", function () {
    apply(root.dataset.theme); // Stylesheets and buttons below <head> exist only now.
    for (const button of document.querySelectorAll(".theme-toggle")) {
      button.addEventListener("click", toggle);
    }
    // Django messages: dismiss on click; confirmations also fade out by themselves.
    for (const button of document.querySelectorAll(".flash-close")) {
      button.addEventListener("click", function () {
        button.closest(".flash").remove();
      });
    }
    for (const flash of document.querySelectorAll(".flash-success, .flash-info")) {
      setTimeout(function () {
        flash.remove();
      }, 8000);
    }
  });
})();
