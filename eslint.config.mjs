// ESLint for the browser code (static/js, not the vendored libraries) and its node tests:
// `make check` runs it. The chat page and the language switcher are ES modules; the other
// pages' scripts are classic scripts in an IIFE.
import js from "@eslint/js";
import globals from "globals";

const CLASSIC_SCRIPTS = [
  "static/js/theme.js",
  "static/js/keys.js",
  "static/js/models_admin.js",
  "static/js/directory.js",
  "static/js/projects.js",
  "static/js/usage.js",
];

export default [
  { ignores: ["static/vendor/**", "node_modules/**", "var/**"] },
  js.configs.recommended,
  {
    files: ["static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      "no-unused-vars": ["error", { args: "none", caughtErrors: "none" }],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
  {
    files: CLASSIC_SCRIPTS,
    languageOptions: {
      sourceType: "script",
      // Loaded after the Django JavaScript catalog and, on the usage pages, uPlot.
      globals: { gettext: "readonly", ngettext: "readonly", interpolate: "readonly", uPlot: "readonly" },
    },
  },
  {
    // The chat modules get window and document passed in (node's tests give a jsdom window):
    // reaching for the globals would break that.
    files: ["static/js/chat/**/*.js"],
    rules: {
      "no-restricted-globals": ["error", "document", "navigator", "localStorage", "sessionStorage", "location"],
    },
  },
  {
    files: ["tests/js/**/*.{js,mjs}", "eslint.config.mjs"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node },
    },
  },
];
