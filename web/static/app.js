// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // Tabs: show one section at a time; a tab holding a field error opens first.
  function initTabs(root) {
    var links = Array.prototype.slice.call(root.querySelectorAll(":scope > .tabbar a[data-tab]"));
    function show(id) {
      links.forEach(function (a) {
        var on = a.getAttribute("data-tab") === id;
        a.classList.toggle("active", on);
        var section = document.getElementById(a.getAttribute("data-tab"));
        if (section) section.classList.toggle("active", on);
      });
      root.querySelectorAll("[data-hide-on]").forEach(function (el) {
        el.classList.toggle("hidden-by-js", el.getAttribute("data-hide-on") === id);
      });
    }
    links.forEach(function (a) {
      a.addEventListener("click", function (e) { e.preventDefault(); show(a.getAttribute("data-tab")); });
    });
    var first = links.length ? links[0].getAttribute("data-tab") : null;
    links.forEach(function (a) {
      var section = document.getElementById(a.getAttribute("data-tab"));
      if (section && section.querySelector(".field-error") && first === links[0].getAttribute("data-tab")) first = a.getAttribute("data-tab");
    });
    if (first) show(first);
  }

  // The AAA tab behaves like FMC's: MCA only for certificate methods, the certificate
  // choice only with MCA on, the field lists only for "Map specific field", prefill and
  // hide only for Client Certificate & AAA, the server only for AAA methods.
  function initAaa(form) {
    var method = form.querySelector("#auth_method");
    if (!method) return;
    var mca = form.querySelector("#mca");
    function toggle(el, on) { if (el) el.classList.toggle("hidden-by-js", !on); }
    function update() {
      var m = method.value;
      var cert = m === "CLIENT_CERTIFICATE_ONLY" || m === "AAA_AND_CLIENT_CERTIFICATE";
      var aaa = m === "AAA_ONLY" || m === "AAA_AND_CLIENT_CERTIFICATE";
      toggle(form.querySelector("#aaa-server-block"), aaa);
      toggle(form.querySelector("#cert-block"), cert);
      toggle(form.querySelector("#mca-source"), cert && mca && mca.checked);
      var specific = form.querySelector("#mapping-specific");
      toggle(form.querySelector("#fields-block"), !specific || specific.checked);
      toggle(form.querySelector("#prefill-block"), m === "AAA_AND_CLIENT_CERTIFICATE");
      var prefill = form.querySelector("#prefill"), hide = form.querySelector("#hide_username");
      if (prefill && hide) { hide.disabled = !prefill.checked; if (!prefill.checked) hide.checked = false; }
    }
    form.addEventListener("change", update);
    update();
  }

  // The Add wizard: one step at a time; a step with an error opens first.
  function initWizard(form) {
    var steps = Array.prototype.slice.call(form.querySelectorAll(".step"));
    var labels = Array.prototype.slice.call(form.querySelectorAll("[data-step-label]"));
    var back = form.querySelector("[data-wizard-back]"), next = form.querySelector("[data-wizard-next]"), finish = form.querySelector("#wizard-finish");
    var current = 0;
    steps.forEach(function (s, i) { if (current === 0 && s.querySelector(".field-error")) current = i; });
    function show(i) {
      current = i;
      steps.forEach(function (s, j) { s.classList.toggle("active", j === i); });
      labels.forEach(function (l, j) { l.classList.toggle("active", j === i); });
      back.hidden = i === 0; next.hidden = i === steps.length - 1; finish.hidden = i !== steps.length - 1;
    }
    back.addEventListener("click", function () { show(Math.max(0, current - 1)); });
    next.addEventListener("click", function () { show(Math.min(steps.length - 1, current + 1)); });
    show(current);
  }

  // Fields shown by a select's value: data-when="select-id=value".
  function initShowByValue() {
    document.querySelectorAll("[data-when]").forEach(function (el) {
      var parts = el.getAttribute("data-when").split("="), select = document.getElementById(parts[0]);
      if (!select) return;
      function update() { el.classList.toggle("hidden-by-js", select.value !== parts[1]); }
      select.addEventListener("change", update); update();
    });
    var family = document.querySelector("[data-toggle-family]");
    if (family) {
      var update = function () {
        document.querySelectorAll(".v4only").forEach(function (e) { e.classList.toggle("hidden-by-js", family.value !== "ipv4"); });
        document.querySelectorAll(".v6only").forEach(function (e) { e.classList.toggle("hidden-by-js", family.value !== "ipv6"); });
      };
      family.addEventListener("change", update); update();
    }
  }

  // A file input fills a textarea (upload a PEM instead of pasting it).
  function initFileLoaders() {
    document.querySelectorAll("input[type=file][data-load-into]").forEach(function (input) {
      input.addEventListener("change", function () {
        var target = document.getElementById(input.getAttribute("data-load-into"));
        if (!input.files.length || !target) return;
        input.files[0].text().then(function (text) { target.value = text; });
      });
    });
    // Binary files (PKCS#12) travel base64 in a hidden field.
    document.querySelectorAll("input[type=file][data-load-base64-into]").forEach(function (input) {
      input.addEventListener("change", function () {
        var target = document.getElementById(input.getAttribute("data-load-base64-into"));
        if (!input.files.length || !target) return;
        var reader = new FileReader();
        reader.onload = function () { target.value = String(reader.result).replace(/^data:[^,]*,/, ""); };
        reader.readAsDataURL(input.files[0]);
      });
    });
  }

  function initConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault(); });
    });
  }

  // Registration progress: poll until the device leaves "Registering", then reload.
  function initPolling() {
    var el = document.querySelector("[data-poll]");
    if (el) {
      var url = el.getAttribute("data-poll");
      var timer = setInterval(function () {
        fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
          if (s.state !== "PENDING") { clearInterval(timer); window.location.reload(); }
        }).catch(function () {});
      }, 1000);
    }
    var refresh = document.querySelector("[data-refresh]");
    if (refresh) setTimeout(function () { window.location.reload(); }, 1000 * Number(refresh.getAttribute("data-refresh")));
  }

  onReady(function () {
    document.querySelectorAll("[data-tabs]").forEach(initTabs);
    document.querySelectorAll("form").forEach(initAaa);
    document.querySelectorAll("form[data-wizard]").forEach(initWizard);
    initShowByValue(); initFileLoaders(); initConfirm(); initPolling();
  });
})();
