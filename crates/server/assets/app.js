// Latchkey's web page: a little plain JavaScript on top of server-rendered HTML. Every form works
// by posting; this file opens the dialogs as modal ones (which keep the focus inside and close
// with Escape), shows the chosen provider's fields, toggles secret fields, copies a one-time token,
// and keeps a form from being submitted twice.
"use strict";

(function () {
  function openDialog(dialog, opener) {
    if (!dialog) return;
    if (dialog.open) dialog.close();
    dialog.returnFocusTo = opener || document.activeElement;
    dialog.showModal();
    // The focus goes to the first field in error, else the first field, else the first button.
    var wanted = ["[aria-invalid=true]", "[autofocus]", "fieldset:not([disabled]) input, input:not([type=hidden]), select, textarea", "button:not([data-close])"];
    for (var i = 0; i < wanted.length; i++) {
      var first = dialog.querySelector(wanted[i]);
      if (first && !first.closest("[hidden]")) {
        first.focus();
        // A field in error: its message in view too.
        var message = first.id && document.getElementById(first.id + "-error");
        if (message) message.scrollIntoView({ block: "nearest" });
        break;
      }
    }
  }

  function showProvider(select) {
    var chosen = select.value;
    var form = select.form;
    form.querySelectorAll("fieldset[data-provider]").forEach(function (fs) {
      var on = fs.getAttribute("data-provider") === chosen;
      fs.hidden = !on;
      fs.disabled = !on;
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-open], [data-close], [data-toggle-secret], [data-copy]");
    if (!target) return;
    if (target.hasAttribute("data-open")) {
      event.preventDefault();
      openDialog(document.getElementById(target.getAttribute("data-open")), target);
    } else if (target.hasAttribute("data-close")) {
      event.preventDefault();
      var dialog = target.closest("dialog");
      if (dialog) dialog.close();
    } else if (target.hasAttribute("data-toggle-secret")) {
      var input = document.getElementById(target.getAttribute("data-toggle-secret"));
      if (!input) return;
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      target.textContent = show ? "Hide" : "Show";
      target.setAttribute("aria-pressed", show ? "true" : "false");
    } else if (target.hasAttribute("data-copy")) {
      var source = document.getElementById(target.getAttribute("data-copy"));
      if (!source) return;
      var done = function () {
        target.textContent = "Copied";
        var note = target.closest("dialog") && target.closest("dialog").querySelector("[data-copied]");
        if (note) note.hidden = false;
      };
      source.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(done, function () {
          if (document.execCommand("copy")) done();
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    }
  });

  // Tab and Shift+Tab go round inside an open dialog, never behind it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    var dialog = document.querySelector("dialog[open]");
    if (!dialog) return;
    var items = Array.prototype.filter.call(
      dialog.querySelectorAll("a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled])"),
      function (e) { return !e.closest("[hidden]"); }
    );
    if (items.length === 0) return;
    var first = items[0];
    var last = items[items.length - 1];
    var inside = dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });

  // A dialog closed (Escape, Cancel, Done) gives the focus back to what opened it.
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog.returnFocusTo && dialog.returnFocusTo.focus) dialog.returnFocusTo.focus();
  }, true);

  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t.matches("[data-provider-select]")) showProvider(t);
    if (t.matches("[data-autosubmit]")) t.form.submit();
  });

  // One submission per form: a double click on Save sends one request. The buttons are disabled
  // after the browser has read the form, so the clicked button's value still goes with it.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.submitted === "yes") {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "yes";
    form.setAttribute("aria-busy", "true");
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  function start() {
    document.querySelectorAll("[data-provider-select]").forEach(showProvider);
    document.querySelectorAll("dialog[data-autoshow]").forEach(function (d) { openDialog(d, null); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
