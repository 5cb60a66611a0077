// API-key page: copy buttons and a confirmation before revoking. No inline script (CSP).
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const input = document.getElementById(button.dataset.copy);
      if (!input) return;
      const label = button.textContent;
      const done = function () {
        button.textContent = button.dataset.copiedLabel || label;
        window.setTimeout(function () { button.textContent = label; }, 2000);
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          document.execCommand("copy");
          done();
        });
      } else {
        // Plain-HTTP installs have no async clipboard API.
        document.execCommand("copy");
        done();
      }
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  const created = document.getElementById("new-key");
  if (created) created.select();
})();
