// "Build and export", once the build is done: fetch the gateway file without another
// click (the form posts the export once; a build exported already waits for a person).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("#build-export-download[data-auto-submit]");
    if (form) { form.removeAttribute("data-auto-submit"); form.submit(); }
  });
})();
