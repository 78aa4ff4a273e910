/* The help desk's small behaviours. Everything works without this file; it only adds
   comfort. Loaded with `defer`, no inline scripts anywhere (Content-Security-Policy). */
(function () {
  "use strict";

  // Checkboxes with data-check-all="NAME" toggle every checkbox named NAME in their form.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[type=checkbox][data-check-all]")) return;
    var form = box.form || document;
    form.querySelectorAll("input[type=checkbox][name='" + box.dataset.checkAll + "']")
      .forEach(function (other) { other.checked = box.checked; });
  });

  // Buttons and links with data-confirm="Question?" ask before they act.
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.dataset.confirm)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // Selects with data-autosubmit submit their form when changed (the form also has a
  // submit button for use without JavaScript).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-autosubmit]") && el.form) el.form.requestSubmit();
  });

  // After an htmx swap, move focus to the first element marked data-focus (accessibility:
  // screen readers hear the result of the action).
  document.addEventListener("htmx:afterSwap", function (event) {
    // After an outerHTML swap the old target is gone: look in the document instead.
    var scope = event.detail.target.isConnected ? event.detail.target : document;
    var target = scope.querySelector("[data-focus]");
    if (target) target.focus();
  });

  // Inside an element marked data-swap-errors, htmx swaps in 4xx answers too (422: the form
  // with its errors, 403: the page with the refusal), so errors show next to the fields.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if ((status === 400 || status === 403 || status === 422) && elt && elt.closest &&
        elt.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Buttons with data-kb-insert="text" put the text into the textarea whose id is in
  // data-kb-target, at the cursor: the reply box's "Insert" helper (articles, canned
  // responses). With data-kb-block the text goes on lines of its own.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-kb-insert]") : null;
    if (!button) return;
    var field = document.getElementById(button.dataset.kbTarget);
    if (!field) return;
    event.preventDefault();
    var text = button.dataset.kbInsert;
    var start = field.selectionStart, end = field.selectionEnd;
    if (button.hasAttribute("data-kb-block")) {
      if (start > 0 && field.value.charAt(start - 1) !== "\n") text = "\n\n" + text;
      if (end < field.value.length) text = text + "\n\n";
    }
    field.setRangeText(text, start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.focus();
  });
})();
