// API key box for every DigitFlow page. The key lives in this tab's sessionStorage only (never in
// a URL, never in localStorage) and is sent as "Authorization: Bearer <key>" with the page's own
// requests: fetch and XMLHttpRequest to this origin are wrapped here, so page scripts need no
// changes, and same-origin download links (the CSV export) are fetched with the key.
(function () {
  "use strict";
  var STORE = "digitflow-api-key";

  function getKey() {
    try { return window.sessionStorage.getItem(STORE) || ""; } catch (e) { return ""; }
  }
  function sameOrigin(url) {
    try { return new URL(url, window.location.href).origin === window.location.origin; }
    catch (e) { return false; }
  }

  var box, input, status;
  function say(text, needed) {
    if (!status) return;
    status.textContent = text;
    box.classList.toggle("key-needed", Boolean(needed));
  }
  function refused() { say(getKey() ? "Key refused" : "An API key is needed", true); }

  var realFetch = window.fetch.bind(window);
  window.fetch = function (resource, init) {
    var url = resource instanceof Request ? resource.url : String(resource);
    var key = getKey();
    if (key && sameOrigin(url)) {
      init = Object.assign({}, init);
      var headers = new Headers(init.headers || (resource instanceof Request ? resource.headers : {}));
      if (!headers.has("Authorization")) headers.set("Authorization", "Bearer " + key);
      init.headers = headers;
    }
    return realFetch(resource, init).then(function (response) {
      if (response.status === 401 && sameOrigin(url)) refused();
      return response;
    });
  };

  var realOpen = XMLHttpRequest.prototype.open;
  var realSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this._digitflowSameOrigin = sameOrigin(url);
    return realOpen.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    var key = getKey();
    if (key && this._digitflowSameOrigin) this.setRequestHeader("Authorization", "Bearer " + key);
    this.addEventListener("load", function () { if (this.status === 401) refused(); });
    return realSend.apply(this, arguments);
  };

  // A plain link cannot carry a header: fetch the file with the key, then save it.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[download]");
    if (!link || !getKey() || !sameOrigin(link.href) || link.href.indexOf("blob:") === 0) return;
    event.preventDefault();
    window.fetch(link.href).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      var name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
      return response.blob().then(function (blob) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = name ? name[1] : "download";
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      });
    }).catch(function (error) { say("Download failed: " + error.message, true); });
  });

  function build() {
    var header = document.querySelector(".site-header");
    if (!header) return;
    box = document.createElement("form");
    box.className = "api-key";
    box.setAttribute("data-testid", "api-key");
    box.innerHTML =
      '<label for="api-key-input">API key</label>' +
      '<input id="api-key-input" type="password" autocomplete="off" spellcheck="false" ' +
      'placeholder="df_..." data-testid="api-key-input">' +
      '<button type="submit" data-testid="api-key-save">Use</button>' +
      '<button type="button" data-testid="api-key-forget">Forget</button>' +
      '<span role="status" data-testid="api-key-status"></span>';
    header.appendChild(box);
    input = box.querySelector("input");
    status = box.querySelector("[role=status]");
    say(getKey() ? "Key set for this tab" : "");
    box.addEventListener("submit", function (event) {
      event.preventDefault();
      var key = input.value.trim();
      if (!key) return;
      window.sessionStorage.setItem(STORE, key);
      input.value = "";
      window.location.reload();  // the page loads its data again, now with the key
    });
    box.querySelector("[data-testid=api-key-forget]").addEventListener("click", function () {
      window.sessionStorage.removeItem(STORE);
      say("Key forgotten");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
