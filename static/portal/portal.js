// Small enhancements of the member portal. Every page works without them: without this
// script the menu links simply wrap and the language buttons reload without restoring focus.
(function () {
  "use strict";

  // The compact menu on a phone: a disclosure button that shows or hides the main links.
  var toggle = document.querySelector(".nav-toggle");
  var nav = document.getElementById("main-nav");
  if (toggle && nav) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      toggle.setAttribute("aria-expanded", String(toggle.getAttribute("aria-expanded") !== "true"));
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || toggle.getAttribute("aria-expanded") !== "true") return;
      var focusWasInMenu = nav.contains(document.activeElement);
      toggle.setAttribute("aria-expanded", "false");
      if (focusWasInMenu) toggle.focus();
    });
  }

  // The language buttons reload the page: afterwards focus returns to the chosen language,
  // so a keyboard or screen-reader user continues where they were.
  var KEY = "portal-language-focus";
  var form = document.querySelector(".language-form");
  if (!form) return;
  form.addEventListener("submit", function (event) {
    var chosen = event.submitter;
    try {
      sessionStorage.setItem(KEY, chosen && chosen.value ? chosen.value : "");
    } catch (error) {
      // Storage refused (private mode): the language still changes, focus starts at the top.
    }
  });
  var wanted = "";
  try {
    wanted = sessionStorage.getItem(KEY) || "";
    sessionStorage.removeItem(KEY);
  } catch (error) {
    wanted = "";
  }
  if (!wanted) return;
  // The chosen language's button, or (on a phone, where only the other language shows) the
  // first visible one.
  var buttons = Array.prototype.filter.call(
    form.querySelectorAll("button[name=language]"),
    function (button) { return button.getClientRects().length > 0; }
  );
  var target = buttons.filter(function (button) { return button.value === wanted; })[0] || buttons[0];
  if (target) target.focus({ focusVisible: true });
})();
