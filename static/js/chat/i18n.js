// The Django JavaScript catalog's functions (window.gettext, ngettext, interpolate), looked up
// when called: the catalog is a classic script loaded before the modules, and under node (the
// unit tests) there is none, so the text comes back untranslated.

export function gettext(text) {
  const translate = globalThis.gettext;
  return typeof translate === "function" ? translate(text) : text;
}

export function ngettext(singular, plural, count) {
  const translate = globalThis.ngettext;
  if (typeof translate === "function") return translate(singular, plural, count);
  return count === 1 ? singular : plural;
}

export function interpolate(format, values, named = false) {
  const fill = globalThis.interpolate;
  if (typeof fill === "function") return fill(format, values, named);
  if (named) return format.replace(/%\((\w+)\)s/g, (match, key) => String(values[key]));
  const queue = [...values];
  return format.replace(/%s/g, () => String(queue.shift()));
}
