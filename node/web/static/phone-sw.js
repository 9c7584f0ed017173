// Amparo check-in service worker: the phone page opens without signal (the last copy
// of each /checkin page, its script and style), and a tap the page could not send is
// sent when the network is back, even after the page was closed (Background Sync).
// No third-party code; nothing leaves for anywhere but this node.
"use strict";

const PAGES = "amparo-pages-v1";
const TAPS = "amparo-taps";
const OWN = ["/checkin-phone.js", "/checkin-phone.css"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(PAGES).then((cache) => cache.addAll(OWN)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const path = new URL(request.url).pathname;
  if (request.method !== "GET" || !(path.startsWith("/checkin/") || OWN.includes(path))) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(PAGES).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(() => caches.match(request).then((hit) => hit || Response.error())),
  );
});

async function flush() {
  const store = await caches.open(TAPS);
  for (const key of await store.keys()) {
    const tap = await (await store.match(key)).json();
    const response = await fetch(tap.url, {
      method: "POST",
      body: new URLSearchParams(tap.fields),
      headers: { "Accept": "application/json" },
      credentials: "omit",
    });
    if (response.status < 500) await store.delete(key);
  }
}

self.addEventListener("sync", (event) => {
  if (event.tag === TAPS) event.waitUntil(flush());
});
