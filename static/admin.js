// Live progress on an issue's page: polls the counts every two seconds
// while the issue is sending, and hides the controls that no longer
// apply. Without JavaScript the page still shows the figures and the
// controls as of its loading.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) { return; }
  var url = box.getAttribute("data-progress-url");
  function field(name) { return box.querySelector('[data-field="' + name + '"]'); }
  function update(p) {
    ["state", "queued", "sent", "failed", "skipped", "per_minute"].forEach(function (name) {
      var el = field(name);
      if (el) { el.textContent = String(p[name]); }
    });
    var bar = field("bar");
    if (bar) { bar.max = p.total; bar.value = p.settled; }
    // A control the send has moved past (Pause and Cancel once the last
    // copy has left) goes; its handler would refuse it anyway.
    var offered = p.actions || [];
    Array.prototype.forEach.call(document.querySelectorAll("form[data-action]"), function (form) {
      form.hidden = offered.indexOf(form.getAttribute("data-action")) < 0;
    });
    var note = field("note");
    if (note) { note.textContent = p.state === "sending" ? "Updating live." : "Finished updating (" + p.state + ")."; }
    return p.state === "sending" || p.state === "paused";
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) { if (p && update(p)) { setTimeout(poll, 2000); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  if (field("state") && (field("state").textContent === "sending" || field("state").textContent === "paused")) {
    setTimeout(poll, 2000);
  }
})();

// The summary's counter ("N of 300 characters", read with the field
// through aria-describedby): counted again as staff type, as the server
// counts (runs of white space as one). Without JavaScript it shows the
// count as of the page's loading, and the server refuses a longer one.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("textarea[data-max]"), function (field) {
    var box = document.getElementById(field.id + "-count");
    var count = box && box.querySelector('[data-field="count"]');
    if (!count) { return; }
    var max = parseInt(field.getAttribute("data-max"), 10);
    function update() {
      var text = field.value.trim().replace(/\s+/g, " ");
      var n = Array.from(text).length;
      count.textContent = String(n);
      box.classList.toggle("over", n > max);
    }
    field.addEventListener("input", update);
    update();
  });
})();
