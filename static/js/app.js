// Behaviours shared by every page (no inline scripts: the CSP forbids them).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
}, true);
