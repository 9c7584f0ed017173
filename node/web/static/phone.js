// Amparo check-in phone page. Without JavaScript the two forms post as they are.
// With it, a tap is dated on the phone, kept (Cache Storage, shared with the service
// worker) and sent; without signal the page says so and sends it again when the
// network is back ("online"), every few seconds while the page is open, and from the
// service worker (Background Sync) when the page is closed. Every word shown comes from
// the page's data attributes (the node's catalogs); none is written here.
"use strict";

(function () {
  const main = document.getElementById("phone");
  const status = document.getElementById("status");
  const delivery = document.getElementById("delivery");
  if (!main || !status || !delivery) return;
  const words = main.dataset;
  const lang = main.getAttribute("lang") || "en";
  const TAPS = "amparo-taps";
  const key = "/checkin-pending" + location.pathname;
  const RETRY_MS = 4000;
  let pending = null;
  let timer = null;
  let sending = false;

  const PAGES = "amparo-pages-v1";
  if ("serviceWorker" in navigator) {
    // Once the worker runs, keep this page too (it was loaded before the worker could see it).
    navigator.serviceWorker.register("/checkin-sw.js", { scope: "/checkin/" })
      .then(() => navigator.serviceWorker.ready)
      .then(() => caches.open(PAGES))
      .then((cache) => cache.add(location.pathname))
      .catch(() => {});
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }

  function show(text, kind) {
    delivery.textContent = text;
    delivery.className = "delivery" + (kind ? " " + kind : "");
  }

  async function keep(tap) {
    pending = tap;
    if (!window.caches) return;
    try {
      const store = await caches.open(TAPS);
      await store.put(key, new Response(JSON.stringify(tap), { headers: { "Content-Type": "application/json" } }));
    } catch (e) { /* private mode: kept in this page only */ }
  }

  async function forget() {
    pending = null;
    if (!window.caches) return;
    try { await (await caches.open(TAPS)).delete(key); } catch (e) { /* nothing kept */ }
  }

  async function kept() {
    if (!window.caches) return null;
    try {
      const hit = await (await caches.open(TAPS)).match(key);
      return hit ? await hit.json() : null;
    } catch (e) { return null; }
  }

  function waiting() {
    show(words.waiting, "waiting");
    if (timer === null) timer = setInterval(send, RETRY_MS);
    if (navigator.serviceWorker && navigator.serviceWorker.ready) {
      navigator.serviceWorker.ready.then((reg) => reg.sync && reg.sync.register(TAPS)).catch(() => {});
    }
  }

  function answered(doc) {
    if (timer !== null) { clearInterval(timer); timer = null; }
    status.textContent = doc.message;
    status.classList.toggle("refused", !doc.acted);
    if (doc.acted) show(words.sent.replace("{time}", doc.time || clock(doc.at)), "sent");  // the node's clock, as the status
    else show("", "");
    if (doc.help) {
      let help = document.getElementById("help-asked");
      if (!help) {
        help = document.createElement("p");
        help.id = "help-asked";
        help.className = "help-asked";
        delivery.after(help);
      }
      help.textContent = doc.help;
    }
  }

  async function send() {
    if (!pending || sending) return;
    sending = true;
    const tap = pending;
    try {
      const resp = await fetch(tap.url, {
        method: "POST",
        body: new URLSearchParams(tap.fields),
        headers: { "Accept": "application/json" },
        credentials: "omit",
        cache: "no-store",
      });
      if (resp.status >= 500) throw new Error(String(resp.status));  // busy: kept, sent again
      const doc = await resp.json();
      if (pending === tap) await forget();
      answered(doc);
    } catch (e) {
      if (pending === tap) waiting();
    } finally {
      sending = false;
    }
  }

  function locate() {
    return new Promise((resolve) => {
      if (!navigator.geolocation) { resolve(null); return; }
      navigator.geolocation.getCurrentPosition(
        (pos) => resolve(pos.coords),
        () => resolve(null),
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
      );
    });
  }

  function tapId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function submitted(event) {
    event.preventDefault();
    const form = event.target;
    const fields = new FormData(form);
    fields.set("tap", String(Date.now()));
    fields.set("tap_id", tapId());
    if (form.id === "sos-form" && fields.get("share") === "yes") {
      show(words.locating, "waiting");
      const coords = await locate();
      if (coords) {
        fields.set("lat", String(Math.round(coords.latitude * 1e6)));
        fields.set("lon", String(Math.round(coords.longitude * 1e6)));
        fields.set("accuracy", String(Math.round(coords.accuracy || 0)));
      } else {
        show(words.noLocation, "waiting");
      }
    }
    form.reset();
    await keep({ url: location.pathname, fields: Array.from(fields.entries()) });
    send();
  }

  for (const form of document.querySelectorAll("#ok-form, #sos-form")) {
    form.addEventListener("submit", submitted);
  }
  window.addEventListener("online", send);
  kept().then((tap) => {
    if (tap && !pending) { pending = tap; send(); }
  });
})();
