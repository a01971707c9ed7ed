// The fleet console's page: a live map of the fleet, its open alerts, and pages of analytics.
// Plain JavaScript over the console's own API; Leaflet and its marker clustering are served
// from the package, and the tile URL comes from the console's settings (none: a plain map).
(function () {
  "use strict";

  // The address may name a page to open (#page=health) or an alert's trace (#trace=<alert id>).
  const asked = new URLSearchParams(location.hash.slice(1));
  const token = readToken();
  if (!token) { askToken(); return; }

  const api = (path, params) => {
    const url = new URL(path, location.origin);
    Object.entries(params || {}).forEach(([k, v]) => url.searchParams.set(k, v));
    return fetch(url, { headers: { Authorization: "Bearer " + token } }).then(async (r) => {
      if (!r.ok) {
        // The console's own errors say what is wrong in "detail": show that, not just the code.
        const detail = await r.json().then((b) => (typeof b.detail === "string" ? b.detail : ""), () => "");
        throw new Error(r.status + " " + (detail || r.statusText) + " for " + url.pathname);
      }
      return r.json();
    });
  };
  const say = (text) => { document.getElementById("status").textContent = text; };
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
    });
    children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c))));
    return node;
  };
  const table = (rows, columns) => {
    if (!rows.length) return el("p", {}, "none");
    const cols = columns || Object.keys(rows[0]);
    return el("table", {}, el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => el("td", {}, fmt(r[c])))))));
  };
  const fmt = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : v);
  // What the operations view (ops.js) builds on: the same API client and helpers, and the pages.
  const pages = {};
  window.FleetConsole = { api, el, table, say, pages, show: (page) => showPage(page), showAlert: (id) => showAlert(id) };

  // -- the map ---------------------------------------------------------------------------------
  let map, cluster, overlay;
  const markers = new Map(); // vehicle id -> circle marker
  const canvas = L.canvas({ padding: 0.5 });

  function markerFor(id, lat, lon, status) {
    const m = L.circleMarker([lat, lon], { renderer: canvas, radius: 6, weight: 1, color: "#1d2330", fillColor: colour(status), fillOpacity: 0.9 });
    m.vehicleId = id;
    m.bindTooltip(id);
    m.on("click", () => showVehicle(id));
    return m;
  }
  const colour = (s) => ({ active: "#2e7d32", idle: "#f9a825", parked: "#607d8b", offline: "#9e9e9e" }[s] || "#1976d2");

  async function start() {
    const config = await fetch("/config.json").then((r) => r.json());
    map = L.map("map", { preferCanvas: true, keyboard: true, maxZoom: 19 }).setView([config.center_lat, config.center_lon], config.zoom);
    if (config.tile_url) L.tileLayer(config.tile_url, { attribution: config.tile_attribution, maxZoom: 19 }).addTo(map);
    // 100K vehicles: clusters, added in chunks so the page stays responsive while they load.
    cluster = L.markerClusterGroup({ chunkedLoading: true, chunkInterval: 100, removeOutsideVisibleBounds: true, disableClusteringAtZoom: 17 });
    map.addLayer(cluster);
    overlay = L.layerGroup().addTo(map);
    const [fleet, alerts] = await Promise.all([api("/api/v1/vehicles", { format: "compact" }), api("/api/v1/alerts", { open: "true" })]);
    const vehicles = fleet.rows; // [vehicle_id, lat, lon, status]
    const added = vehicles.map(([id, lat, lon, status]) => { const m = markerFor(id, lat, lon, status); markers.set(id, m); return m; });
    // Chunked loading goes on after addLayers returns: the map holds the fleet once the last
    // chunk is in, and the cluster's bounds are not valid before that.
    const mapped = new Promise((resolve) => {
      cluster.options.chunkProgress = (done, total) => { if (done >= total) resolve(); };
    });
    cluster.addLayers(added);
    document.getElementById("vehicle-count").textContent = vehicles.length;
    const list = document.getElementById("vehicle-ids");
    vehicles.slice(0, 5000).forEach(([id]) => list.append(el("option", { value: id })));
    if (vehicles.length && !config.tile_url) map.fitBounds(L.latLngBounds(vehicles.map(([, lat, lon]) => [lat, lon])), { maxZoom: config.zoom });
    alerts.forEach(upsertAlert);
    renderAlerts();
    listen();
    await mapped;
    document.body.dataset.loaded = "true";
    if (asked.get("trace")) window.FleetConsole.showTrace(asked.get("trace"));
    else if (asked.get("page") && asked.get("page") !== "map") showPage(asked.get("page")).catch((err) => say(err.message));
  }

  // -- open alerts, kept live ------------------------------------------------------------------
  const open = new Map();
  function upsertAlert(a) {
    if (a.state === "RESOLVED") open.delete(a.alert_id); else open.set(a.alert_id, a);
  }
  function renderAlerts() {
    const items = [...open.values()].sort((x, y) => String(y.episode_start || y.episode_start_us).localeCompare(String(x.episode_start || x.episode_start_us)));
    const ul = document.getElementById("alerts");
    ul.replaceChildren(...items.map((a) => el("li", {},
      el("button", { type: "button", "data-alert-id": a.alert_id, onclick: () => showAlert(a.alert_id) },
        el("span", { class: "sev-" + a.severity }, a.severity + " " + a.rule), " · " + a.vehicle_id),
      window.FleetConsole.traceButton(a.alert_id))));
    document.getElementById("alert-count").textContent = items.length;
  }

  function listen() {
    const source = new EventSource("/api/v1/stream?access_token=" + encodeURIComponent(token));
    source.addEventListener("hello", () => say("live"));
    source.addEventListener("alert", (e) => { upsertAlert(JSON.parse(e.data)); renderAlerts(); });
    source.addEventListener("positions", (e) => {
      const moved = [];
      JSON.parse(e.data).forEach(([id, lat, lon]) => {
        let m = markers.get(id);
        if (!m) { m = markerFor(id, lat, lon, "active"); markers.set(id, m); cluster.addLayer(m); return; }
        moved.push([m, lat, lon]);
      });
      // Re-clustered in one pass: moving markers inside the cluster tree one by one is slow.
      cluster.removeLayers(moved.map(([m]) => m));
      moved.forEach(([m, lat, lon]) => m.setLatLng([lat, lon]));
      cluster.addLayers(moved.map(([m]) => m));
      document.getElementById("vehicle-count").textContent = markers.size;
    });
    source.onerror = () => say("reconnecting…");
  }

  // -- details ---------------------------------------------------------------------------------
  function details(...children) {
    const box = document.getElementById("details");
    box.replaceChildren(...children);
    box.focus();
  }

  async function showVehicle(id) {
    const [trace, alerts] = await Promise.all([
      api("/api/v1/vehicles/" + encodeURIComponent(id) + "/trace", { format: "geojson" }),
      api("/api/v1/alerts", { vehicle: id, hours: "24" }),
    ]);
    overlay.clearLayers();
    const line = L.geoJSON(trace.features.filter((f) => f.geometry.type === "LineString"), { style: { color: "#1976d2", weight: 3 } }).addTo(overlay);
    if (line.getLayers().length) map.fitBounds(line.getBounds(), { maxZoom: 16 });
    details(el("h2", {}, id), el("p", {}, "Last hour: " + Math.max(trace.features.length - 1, 0) + " positions"),
      el("h3", {}, "Recent alerts"), table(alerts, ["rule", "severity", "state", "episode_start"]));
  }

  async function showAlert(id) {
    const x = await api("/api/v1/alerts/" + encodeURIComponent(id));
    overlay.clearLayers();
    const path = x.events.filter((e) => e.lat != null).map((e) => [e.lat, e.lon]);
    if (path.length > 1) { const line = L.polyline(path, { color: "#b3261e", weight: 3 }).addTo(overlay); map.fitBounds(line.getBounds(), { maxZoom: 16 }); }
    if (x.alert.lat != null) L.circleMarker([x.alert.lat, x.alert.lon], { radius: 9, color: "#b3261e" }).addTo(overlay);
    const pairs = (o) => table(Object.entries(o).map(([name, value]) => ({ name, value })));
    details(el("h2", { id: "explanation" }, x.rule + " on " + x.alert.vehicle_id),
      el("p", {}, x.alert.message || ""), el("p", {}, "State " + x.alert.state + ", severity " + x.alert.severity),
      el("h3", {}, "Threshold"), pairs(x.threshold), el("h3", {}, "Observed"), pairs(x.observed),
      el("h3", {}, "Transitions"), table(x.transitions, ["state", "detected_time", "severity"]),
      el("h3", {}, "Notifications"), table(x.notifications, ["phase", "recipient", "channel", "status", "attempts", "error_code"]),
      el("h3", {}, "Events around it"), el("p", {}, x.events.length + " events"),
      el("h3", {}, "Trace"), window.FleetConsole.traceButton(id, "Show its trace"));
  }

  document.getElementById("find").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("find-vehicle").value.trim();
    if (id) showVehicle(id).catch((err) => say(err.message));
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { overlay && overlay.clearLayers(); document.getElementById("details").replaceChildren(); }
  });

  // -- analytics pages -------------------------------------------------------------------------
  function bars(rows, label, value) {
    const w = 640, h = 22 * rows.length + 10, max = Math.max(1, ...rows.map((r) => Number(r[value]) || 0));
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`); svg.setAttribute("role", "img"); svg.setAttribute("aria-label", value + " by " + label);
    rows.forEach((r, i) => {
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", 200); bar.setAttribute("y", 5 + i * 22); bar.setAttribute("height", 16);
      bar.setAttribute("width", (w - 260) * (Number(r[value]) || 0) / max); bar.setAttribute("fill", "#4fa3ff");
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", 0); text.setAttribute("y", 18 + i * 22); text.textContent = r[label] + "  " + r[value];
      svg.append(bar, text);
    });
    return el("div", { class: "bars" }, svg);
  }
  Object.assign(pages, {
    kpis: () => api("/api/v1/kpis").then((rows) => [el("h2", {}, "Fleet KPIs (24 h)"), bars(rows, "fleet_id", "open_alerts"), table(rows)]),
    trips: () => api("/api/v1/trips", { limit: "50" }).then((rows) => [el("h2", {}, "Trips per vehicle (24 h)"), bars(rows.slice(0, 20), "vehicle_id", "distance_km"), table(rows)]),
    scorecards: () => api("/api/v1/scorecards", { limit: "50" }).then((rows) => [el("h2", {}, "Driver scorecards, worst first"), bars(rows.slice(0, 20), "driver_id", "score"), table(rows)]),
  });
  async function showPage(page) {
    document.querySelectorAll("nav .tab").forEach((t) => t.setAttribute("aria-pressed", String(t.dataset.page === page)));
    document.querySelectorAll(".page").forEach((p) => { p.hidden = p.id !== "page-" + page; });
    document.dispatchEvent(new CustomEvent("fleet-page", { detail: page }));
    if (page === "map") { map.invalidateSize(); return; }
    if (!pages[page]) return; // a page that draws itself (an alert's trace)
    const section = document.getElementById("page-" + page);
    section.replaceChildren(...(await pages[page]()));
  }
  document.querySelectorAll("nav .tab").forEach((tab) => tab.addEventListener("click", () => {
    showPage(tab.dataset.page).catch((err) => say(err.message));
  }));

  start().catch((err) => { console.error(err); say("cannot load the fleet: " + (err.message || err)); });

  // -- the token -------------------------------------------------------------------------------
  function readToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("token")) {
      sessionStorage.setItem("fleetpipe-token", hash.get("token"));
      history.replaceState(null, "", location.pathname); // not left in the address bar
    }
    return sessionStorage.getItem("fleetpipe-token");
  }
  function askToken() {
    const form = document.getElementById("login");
    form.hidden = false;
    document.querySelector("main").hidden = true;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem("fleetpipe-token", document.getElementById("token").value);
      location.reload();
    });
    document.getElementById("token").focus();
  }
})();
