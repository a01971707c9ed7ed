// The notifications report: delivery outcomes of the last 24 h, one section per kind of
// recipient — the drivers, the operations recipients, the webhook sinks — so that an operations
// desk's SMS are never counted as the drivers'. Plain JavaScript over the console's API.
(function () {
  "use strict";

  const C = window.FleetConsole;
  if (!C) return; // no token yet: the page asks for one first
  const { api, el, table, pages } = C;
  // The API's recipient_kind values (fleetpipe.query.statements.notifications), in this order.
  const KINDS = [
    ["driver", "Drivers"],
    ["operations", "Operations recipients"],
    ["webhook", "Webhook sinks"],
  ];
  const COLUMNS = ["channel", "status", "deliveries", "alerts", "recipients", "attempts", "latest_error_code", "last_decided"];
  const sum = (rows, key) => rows.reduce((total, r) => total + (Number(r[key]) || 0), 0);

  pages.notifications = () => api("/api/v1/notifications", { limit: "1000" }).then((rows) => {
    const known = new Set(KINDS.map(([kind]) => kind));
    const kinds = [...KINDS, ...[...new Set(rows.map((r) => r.recipient_kind))].filter((k) => !known.has(k)).map((k) => [k, k])];
    return [
      el("h2", {}, "Notifications by recipient (24 h)"),
      ...kinds.map(([kind, title]) => {
        const mine = rows.filter((r) => r.recipient_kind === kind);
        const sent = sum(mine.filter((r) => r.status === "SENT"), "deliveries");
        return el("section", { class: "recipients", "data-recipient-kind": kind, "aria-label": title },
          el("h3", {}, title + " — " + sum(mine, "deliveries") + " deliveries, " + sent + " sent"),
          table(mine, COLUMNS));
      }),
    ];
  });
})();
