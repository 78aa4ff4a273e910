/* Admin screens: small comforts; every screen works without this file (CSP: no inline
   scripts). */
(function () {
  "use strict";

  // A checkbox with data-check-group toggles the other checkboxes of its fieldset (the
  // role screen's "All of these" per permission group).
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[type=checkbox][data-check-group]")) return;
    var group = box.closest("fieldset");
    if (!group) return;
    group.querySelectorAll("input[type=checkbox]:not([data-check-group])")
      .forEach(function (other) { other.checked = box.checked; });
  });

  // Filter rules: the header name matters only for the "Header" field.
  function syncHeader(select) {
    var row = select.closest("[data-rule]");
    if (!row) return;
    var header = row.querySelector("[data-rule-header]");
    if (header) header.hidden = select.value !== "header";
  }
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-rule] select[name$='-field']")) syncHeader(el);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-rule] select[name$='-field']").forEach(syncHeader);
  });
})();
