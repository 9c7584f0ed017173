// Amparo dashboard: live alerts (SSE) with a visible and audible cue, live responses on an
// alert page, and the region search in the compose form. No libraries, no network but the node.
"use strict";

// One AudioContext for the page. Chromium creates it "suspended" until the person
// has touched the page, and a suspended context plays nothing: the first click or
// key press resumes it, and while it is suspended a visible "enable sound" button
// says so (the visible banner works either way).
let audio = null;

function soundControl() {
  const button = document.getElementById("sound");
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!button || !Context) return;
  try { audio = new Context(); } catch (e) { audio = null; return; }
  const show = () => { button.hidden = audio.state === "running"; };
  const resume = () => { if (audio.state !== "running") audio.resume().then(show, show); };
  audio.addEventListener("statechange", show);
  button.addEventListener("click", resume);
  document.addEventListener("click", resume, { capture: true });
  document.addEventListener("keydown", resume, { capture: true });
  show();
}

function beep() {
  if (!audio || audio.state !== "running") return;
  try {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "square"; osc.frequency.value = 880; gain.gain.value = 0.08;
    osc.connect(gain); gain.connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.35);
    window.__amparoBeeps = (window.__amparoBeeps || 0) + 1;  // read by the browser tests
  } catch (e) { /* no audio device: the banner still shows */ }
}

// The list's words in the reader's language (severities, "sealed"), from the catalog.
function words(list) {
  try { return JSON.parse(list.dataset.words || "{}"); } catch (e) { return {}; }
}

// "New alert: [SIMULACRO] headline", in the reader's language.
function bannerText(a, list, headline) {
  const drill = a.status !== "actual" ? "[" + (list.dataset.drillLabel || "DRILL") + "] " : "";
  return (list.dataset.newLabel || "New alert") + ": " + drill + (headline || "");
}

// A row that arrived live is drawn at once from the event, then replaced by the
// server's own row (the list's template, the catalog's words: generated headlines,
// acknowledgements, the time), so live rows read like the rest of the list.
async function serverRow(li, a, list) {
  try {
    const resp = await fetch("/ui/alerts/" + encodeURIComponent(a.id) + "/item", { credentials: "same-origin" });
    if (!resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    const fresh = doc.querySelector("li.alert");
    if (!fresh || !li.isConnected) return;
    li.replaceChildren(...fresh.childNodes);
    li.className = fresh.className + " fresh";
    const banner = document.getElementById("live");
    const headline = li.querySelector(".headline");
    if (banner && banner.dataset.id === a.id && headline) banner.textContent = bannerText(a, list, headline.textContent);
  } catch (e) { /* the node may be restarting: the row drawn from the event stays */ }
}

function alertItem(a, list) {
  const said = words(list);
  const li = document.createElement("li");
  const drill = a.status !== "actual";
  li.className = "alert fresh sev-" + (a.severity || "unknown") + (drill ? " drill" : "");
  li.dataset.id = a.id;
  const link = document.createElement("a");
  link.href = "/ui/alerts/" + a.id;
  if (drill) {
    const badge = document.createElement("span");
    badge.className = "drill-badge"; badge.textContent = list.dataset.drillLabel || "DRILL";
    link.appendChild(badge);
  }
  const sev = document.createElement("span");
  sev.className = "sev"; sev.textContent = said[a.severity] || a.severity || "";
  const headline = document.createElement("span");
  headline.className = "headline"; headline.textContent = a.headline || said.sealed || "";
  link.append(sev, headline);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = (a.regions || []).join(", ") + " · " + (a.author_name || a.author_fingerprint || "");
  li.append(link, meta);
  serverRow(li, a, list);
  return li;
}

function wanted(a, list) {
  const severity = list.dataset.severity, status = list.dataset.status, region = list.dataset.region;
  if (severity && a.severity !== severity) return false;
  if (status === "actual" && a.status !== "actual") return false;
  if (status === "exercise" && a.status === "actual") return false;
  if (region && !(a.regions || []).some(r => r === region || r.startsWith(region + "-"))) return false;
  return true;
}

// An update or cancel (its "change" says who, why and the incident as it is now) changes
// the incident's row in place: its current headline and severity, struck through once
// cancelled. An incident not listed yet is added when it now matches the filters.
function followUp(a, list, banner) {
  const c = a.change;
  const now = Object.assign({}, a, { id: c.incident, headline: c.headline, severity: c.severity, regions: c.regions });
  let li = list.querySelector('[data-id="' + c.incident + '"]');
  if (!li) {
    if (!wanted(now, list)) return;
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    li = alertItem(now, list);
    list.prepend(li);
  }
  li.querySelector(".headline").textContent = c.headline || "";
  const sev = li.querySelector(".sev");
  sev.textContent = c.severity || "";
  li.className = li.className.replace(/\bsev-\S+/, "sev-" + (c.severity || "unknown"));
  const meta = li.querySelector(".meta");
  if (c.kind === "cancel" && !li.classList.contains("cancelled")) {
    li.classList.add("cancelled");
    const mark = document.createElement("strong");
    mark.textContent = list.dataset.cancelledLabel || "cancelled";
    meta.append(" · ", mark);
  }
  const said = changeText(c, list);
  li.title = said;
  banner.hidden = false;
  const label = c.kind === "cancel" ? list.dataset.cancelledLabel || "cancelled" : list.dataset.updatedLabel || "update";
  banner.textContent = label + ": " + (c.headline || "") + " — " + said;
}

// Who cancelled and why, or who updated, in the page's language (the catalog's
// sentences are in the list's data attributes, with {sender} and {reason} to fill).
function changeText(c, list) {
  const template = c.kind !== "cancel" ? list.dataset.updatedBy
    : (c.reason || "").trim() ? list.dataset.cancelledBy : list.dataset.cancelledByPlain;
  if (!template) return c.text || "";
  const values = { sender: c.by || "", reason: c.reason || "" };
  return template.replace(/\{(sender|reason)\}/g, (m, key) => values[key]);
}

function liveAlerts() {
  const list = document.getElementById("alerts");
  if (!list || !window.EventSource) return;
  const banner = document.getElementById("live");
  const source = new EventSource("/ui/stream");
  source.addEventListener("open", () => { list.dataset.live = "open"; });  // subscribed: what comes next shows up
  source.addEventListener("alert", (event) => {
    const a = JSON.parse(event.data);
    if (a.msg_type && a.msg_type !== "alert") {
      if (a.change) followUp(a, list, banner);
      return;
    }
    if (!wanted(a, list) || list.querySelector('[data-id="' + a.id + '"]')) return;
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.prepend(alertItem(a, list));
    banner.hidden = false;
    banner.dataset.id = a.id;
    banner.textContent = bannerText(a, list, a.headline);
    beep();
  });
}

function liveResponses() {
  const box = document.getElementById("responses");
  if (!box) return;
  setInterval(async () => {
    try {
      const resp = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.body;
      if (fresh) box.replaceChildren(...fresh.childNodes);
    } catch (e) { /* the node may be restarting */ }
  }, 3000);
}

// "Reached n of m" on the page of an alert this organization sent: the stream's
// receipt events (asked for with receipts=1) name the alerts a delivery receipt just
// answered; when this one is among them, the server's own fragment replaces the box.
function liveReceipts() {
  const box = document.getElementById("receipts");
  if (!box || !window.EventSource) return;
  const refresh = async () => {
    try {
      const resp = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      if (doc.body) box.replaceChildren(...doc.body.childNodes);
    } catch (e) { /* the node may be restarting: the next receipt brings it up to date */ }
  };
  const source = new EventSource("/ui/stream?receipts=1");
  // Subscribed: a receipt that came while the page loaded is in the fragment now.
  source.addEventListener("open", () => { refresh().then(() => { box.dataset.live = "open"; }); });
  source.addEventListener("receipt", (event) => {
    let named = [];
    try { named = JSON.parse(event.data).alerts || []; } catch (e) { return; }
    if (named.includes(box.dataset.alert)) refresh();
  });
}

function regionSearch() {
  const input = document.getElementById("region-search");
  const target = document.getElementById("regions");
  const results = document.getElementById("region-results");
  if (!input || !target || !results) return;
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      results.replaceChildren();
      if (!q) return;
      const resp = await fetch("/ui/regions?q=" + encodeURIComponent(q), { credentials: "same-origin" });
      if (!resp.ok) return;
      for (const r of await resp.json()) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button"; button.textContent = r.code + " — " + r.name;
        button.addEventListener("click", () => {
          const codes = target.value.split(/[\s,]+/).filter(Boolean);
          if (!codes.includes(r.code)) codes.push(r.code);
          target.value = codes.join(" ");
          results.replaceChildren(); input.value = ""; target.focus();
        });
        li.appendChild(button); results.appendChild(li);
      }
    }, 200);
  });
}

document.addEventListener("DOMContentLoaded", () => { soundControl(); liveAlerts(); liveResponses(); liveReceipts(); regionSearch(); });
