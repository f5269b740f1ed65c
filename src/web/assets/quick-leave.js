// Quick leave: one click on the button, or the Escape key, replaces this page with a neutral
// site. location.replace leaves no history entry for the page, so Back does not return to it.
// Without JavaScript the button is an ordinary link to the same site.
(function () {
  "use strict";
  var link = document.querySelector("a.quick-leave");
  if (!link) {
    return;
  }
  function leave(event) {
    if (event) {
      event.preventDefault();
    }
    var to = link.href;
    document.title = "";
    document.body.textContent = "";
    window.location.replace(to);
  }
  link.addEventListener("click", leave);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Esc") {
      leave(event);
    }
  });
})();
