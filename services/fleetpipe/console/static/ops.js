// The operations view: an alert's trace as a waterfall (read from Jaeger by the console) and the
// pipeline's health (rates, times, lag, dead letters, Twilio outcomes), with the rate and the lag
// drawn as live SVG charts. Plain JavaScript over the console's API, like console.js.
(function () {
  "use strict";

  const C = window.FleetConsole;
  if (!C) return; // no token yet: the page asks for one first
  const { api, el, table, say, pages } = C;
  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  };
  const num = (v, digits) => (v == null ? "–" : Number(v).toLocaleString("en", { maximumFractionDigits: digits == null ? 1 : digits }));
  const ms = (us) => (us / 1000).toLocaleString("en", { maximumFractionDigits: 2 }) + " ms";
  const PALETTE = ["#1976d2", "#2e7d32", "#b3261e", "#8a5a00", "#6a1b9a", "#00838f", "#5d4037"];

  // -- an alert's trace --------------------------------------------------------------------------
  C.traceButton = (alertId, label) => el("button", {
    type: "button", class: "trace-link", "data-trace-alert": alertId, title: "the alert's trace",
    onclick: (e) => { e.stopPropagation(); showTrace(alertId).catch((err) => say(err.message)); },
  }, label || "trace");

  C.showTrace = (alertId) => showTrace(alertId).catch((err) => say(err.message));
  async function showTrace(alertId) {
    const section = document.getElementById("page-trace");
    section.dataset.loaded = "";
    section.replaceChildren(el("p", {}, "reading the trace of " + alertId + " …"));
    await C.show("trace");
    let answer;
    try {
      answer = await api("/api/v1/alerts/" + encodeURIComponent(alertId) + "/trace");
    } catch (err) {
      section.replaceChildren(el("h2", {}, "Trace of " + alertId), el("p", { class: "problem" }, String(err.message || err)),
        el("button", { type: "button", onclick: () => showTrace(alertId) }, "Try again"));
      section.dataset.loaded = "error";
      return;
    }
    const head = [el("h2", { id: "trace-title" }, "Trace of " + answer.rule + " on " + answer.vehicle_id),
      el("p", {}, "Alert " + answer.alert_id + ": " + answer.traces.length + " trace(s), one per transition, read from Jaeger's query API.")];
    if (!answer.traces.length) {
      head.push(el("p", { class: "problem" }, "No trace of it yet: spans reach Jaeger a few seconds after the work they time."),
        el("button", { type: "button", onclick: () => showTrace(alertId) }, "Try again"));
    }
    section.replaceChildren(...head, ...answer.traces.map(drawTrace));
    section.dataset.loaded = "true";
  }

  function drawTrace(t) {
    const total = Math.max(t.duration_us, 1);
    const colour = new Map(t.services.map((s, i) => [s, PALETTE[i % PALETTE.length]]));
    const rows = t.spans.map((s) => {
      const hop = s.kafka ? "kafka " + s.kafka.operation + " " + s.kafka.topic + " p" + s.kafka.partition + (s.kafka.offset != null ? " @" + s.kafka.offset : "") : "";
      const extra = Object.entries(s.tags).map(([k, v]) => k.replace("fleetpipe.", "") + "=" + v).join(" ");
      const bar = el("div", { class: "bar" + (s.error ? " error" : ""), title: s.name + " " + ms(s.duration_us) });
      bar.style.left = (100 * s.offset_us / total) + "%";
      bar.style.width = Math.max(0.3, 100 * s.duration_us / total) + "%";
      bar.style.background = colour.get(s.service);
      const row = el("li", { class: "span-row", "data-span-id": s.span_id, "data-parent-id": s.parent_id || "", "data-service": s.service, "data-name": s.name, "data-depth": s.depth, "data-offset-us": s.offset_us },
        el("div", { class: "span-label", title: extra },
          el("span", { class: "indent" }, "\u00a0".repeat(2 * s.depth)),
          el("span", { class: "svc", style: "color:" + colour.get(s.service) }, s.service), " ", s.name,
          el("span", { class: "hop" }, hop)),
        el("div", { class: "span-track" }, bar),
        el("div", { class: "span-time" }, "+" + ms(s.offset_us) + " · " + ms(s.duration_us)));
      return row;
    });
    const link = t.ui_link ? el("a", { href: t.ui_link, target: "_blank", rel: "noopener" }, "open in Jaeger's UI") : "";
    return el("section", { class: "trace", "data-trace-id": t.trace_id },
      el("h3", {}, (t.state || "transition") + " · trace " + t.trace_id + " · " + ms(t.duration_us) + " · " + t.spans.length + " spans "), link,
      el("p", { class: "legend" }, t.services.map((s) => el("span", { style: "color:" + colour.get(s) }, "■ " + s + "  "))),
      el("ol", { class: "waterfall", "aria-label": "spans in causal order" }, rows));
  }

  // -- the pipeline's health ---------------------------------------------------------------------
  function lineChart(id, title, history, key, unit) {
    const w = 720, h = 200, pad = 36, legend = 110; // the legend's room on the right
    // A service keeps its colour on both charts; only series with a value are drawn: ingest
    // consumes nothing, so it has no lag line (not a flat zero).
    const all = [...new Set(history.flatMap((p) => Object.keys(p[key])))].sort();
    const colourOf = (s) => PALETTE[all.indexOf(s) % PALETTE.length];
    const services = all.filter((s) => history.some((p) => p[key][s] != null));
    const t0 = history.length ? history[0].at : 0, t1 = history.length ? history[history.length - 1].at : 1;
    const max = Math.max(1, ...history.flatMap((p) => Object.values(p[key]).filter((v) => v != null)));
    const x = (t) => pad + (w - pad - legend) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1);
    const y = (v) => h - pad + (pad * 2 - h) * (v / max);
    const chart = svg("svg", { id, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title });
    chart.append(svg("line", { x1: pad, y1: h - pad, x2: w - legend, y2: h - pad, stroke: "#8a93a3" }),
      svg("line", { x1: pad, y1: pad, x2: pad, y2: h - pad, stroke: "#8a93a3" }));
    const top = svg("text", { x: 2, y: pad - 4, "font-size": 11 }); top.textContent = num(max) + " " + unit;
    const span = svg("text", { x: w - legend - 60, y: h - 8, "font-size": 11 }); span.textContent = Math.round(t1 - t0) + " s shown";
    chart.append(top, span);
    services.forEach((s, i) => {
      const pts = history.filter((p) => p[key][s] != null).map((p) => `${x(p.at).toFixed(1)},${y(p[key][s]).toFixed(1)}`);
      chart.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: colourOf(s), "stroke-width": 2, "data-service": s }));
      const label = svg("text", { x: w - legend + 8, y: pad + 13 * i, "font-size": 11, fill: colourOf(s) }); label.textContent = s;
      chart.append(label);
    });
    return el("figure", { class: "chart" }, el("figcaption", {}, title), chart);
  }

  function healthTable(services) {
    const cols = ["service", "status", "in/s", "out/s", "processing", "DB write", "lag", "dead letters"];
    return el("table", { id: "health-table" }, el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c)))),
      el("tbody", {}, services.map((s) => el("tr", { "data-service": s.service, class: s.up ? "up" : "down" },
        el("th", { scope: "row" }, s.service),
        el("td", { class: "status" }, s.up ? "up" : "down: " + s.error),
        el("td", { class: "in" }, num(s.in_per_s)), el("td", { class: "out" }, num(s.out_per_s)),
        el("td", {}, s.processing_ms == null ? "–" : num(s.processing_ms, 2) + " ms"),
        el("td", {}, s.db_write_ms == null ? "–" : num(s.db_write_ms, 2) + " ms"),
        el("td", { class: "lag" }, num(s.total_lag, 0)),
        el("td", {}, num(Object.values(s.deadletters).reduce((a, b) => a + b, 0), 0))))));
  }

  const flat = (services, field, label) => services.flatMap((s) => Object.entries(s[field]).map(([k, v]) => ({ service: s.service, [label]: k, total: v })));

  async function healthPage() {
    const h = await api("/api/v1/health");
    const services = h.services;
    return [el("h2", {}, "Pipeline health"),
      el("p", {}, "From the services' metrics (" + h.source + "), read every " + h.interval_s + " s; rates and times over the last " + h.window_s + " s. Updated " + new Date().toLocaleTimeString() + "."),
      healthTable(services),
      el("div", { class: "charts" },
        lineChart("rate-chart", "Events in per second, by service", h.history, "in_per_s", "events/s"),
        lineChart("lag-chart", "Consumer lag (records), by service", h.history, "lag", "records")),
      el("h3", {}, "Consumer lag by partition"), table(flat(services, "lag", "partition").map((r) => ({ ...r, total: Math.round(r.total) }))),
      el("h3", {}, "Dead letters by reason (since start)"), table(flat(services, "deadletters", "reason")),
      el("h3", {}, "Twilio outcomes (since start)"), table(flat(services, "twilio", "outcome"))];
  }
  pages.health = healthPage;

  // Live while the page shows: redrawn every few seconds, stopped when another page is chosen.
  let timer = null;
  document.addEventListener("fleet-page", (e) => {
    clearInterval(timer);
    timer = null;
    if (e.detail !== "health") return;
    timer = setInterval(async () => {
      try {
        const section = document.getElementById("page-health");
        section.replaceChildren(...(await healthPage()));
        section.dataset.updates = String(Number(section.dataset.updates || 0) + 1);
      } catch (err) { say(err.message); }
    }, 2000);
  });
})();
