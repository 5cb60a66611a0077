// The language switcher (templates/_language_switcher.html): choosing a language applies it at
// once; without JavaScript the form's own button does the same.
for (const form of document.querySelectorAll("form[data-language-switcher]")) {
  const select = form.querySelector("select");
  const apply = form.querySelector(".language-switcher-apply");
  if (!select || !apply) continue;
  apply.hidden = true;
  select.addEventListener("change", () => form.requestSubmit());
}
