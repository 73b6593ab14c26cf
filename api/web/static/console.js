// infra-crew web console: small progressive enhancement over server-rendered pages.
//  - live refresh: elements with data-live-url poll their fragment every 2 s (sending the
//    version they show; 204 = unchanged) and swap in the new HTML;
//  - the architecture diagram: Mermaid (vendored, securityLevel "strict") renders every
//    <pre class="mermaid"> into an SVG;
//  - relative ages ("3 min ago") stay current.
// Everything works without it; it only saves reloading.
"use strict";
(function () {
  var POLL_MS = 2000;

  function age(seconds) {
    if (seconds >= 86400) return Math.floor(seconds / 86400) + " d ago";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h ago";
    if (seconds >= 60) return Math.floor(seconds / 60) + " min ago";
    return seconds + " s ago";
  }

  function renderAges(root) {
    root.querySelectorAll("time[data-age]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = age(Math.max(0, Math.floor((Date.now() - at) / 1000)));
    });
  }

  function renderDiagrams(root) {
    var nodes = Array.prototype.slice.call(root.querySelectorAll("pre.mermaid:not([data-processed])"));
    if (!nodes.length || !window.mermaid) return Promise.resolve();
    return window.mermaid.run({ nodes: nodes }).catch(function (err) {
      nodes.forEach(function (n) { n.setAttribute("data-render-error", String(err)); });
    });
  }

  function focusKey(container) {
    var el = document.activeElement;
    if (!el || !container.contains(el)) return null;
    return el.id ? "#" + el.id : el.getAttribute("href");
  }

  function restoreFocus(container, key) {
    if (!key) return;
    var target = key.charAt(0) === "#" ? container.querySelector(key) : container.querySelector('[href="' + key + '"]');
    if (target) target.focus();
  }

  function follow(container) {
    var url = container.getAttribute("data-live-url");
    var version = container.getAttribute("data-live-version") || "";
    var busy = false;
    var timer = null;

    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "v=" + encodeURIComponent(version), {
        headers: { "X-Console-Live": "1" }, credentials: "same-origin", cache: "no-store"
      }).then(function (res) {
        if (res.status === 401) { window.location.reload(); return null; }
        if (res.headers.get("X-Live") === "0") { clearInterval(timer); }
        if (res.status !== 200) return null;
        version = res.headers.get("X-Live-Version") || version;
        return res.text();
      }).then(function (html) {
        if (html === null || html === undefined) return null;
        var key = focusKey(container);
        container.innerHTML = html; // rendered by the server's templates (autoescaped)
        container.setAttribute("data-live-version", version);
        renderAges(container);
        restoreFocus(container, key);
        return renderDiagrams(container);
      }).catch(function () { /* offline for a moment: try again on the next tick */ })
        .then(function () { busy = false; });
    }

    if (container.getAttribute("data-live") === "0") return;
    timer = setInterval(tick, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.mermaid) {
      window.mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        theme: "neutral",
        fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        htmlLabels: false,
        flowchart: { htmlLabels: false }
      });
    }
    renderAges(document);
    renderDiagrams(document);
    document.querySelectorAll("[data-live-url]").forEach(follow);
    setInterval(function () { renderAges(document); }, 5000);
  });
})();
