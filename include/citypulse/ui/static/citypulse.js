/* CityPulse pages in the Airflow UI: each page is drawn from the plugin's JSON API.
   Served by the plugin itself; charts by the vendored Chart.js (static/vendor/). */
"use strict";

const NUMBER = new Intl.NumberFormat("en-US");
const DECIMAL = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 3 });
const PERCENT = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
const STATUS_COLORS = {
  fresh: "#2e7d32", late: "#ef6c00", failing: "#c62828", drifting: "#6a1b9a", waiting: "#616161",
};

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/* Element.append would write a null child as the text "null". */
function add(parent, ...children) {
  parent.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return parent;
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) {
    const detail = await response.json().then((body) => body.detail, () => null);
    throw new Error(detail ? `${detail} (${response.status})` : `${path}: ${response.status} ${response.statusText}`);
  }
  return response.json();
}

const count = (n) => (n === null || n === undefined ? "–" : NUMBER.format(n));
const share = (x) => (x === null || x === undefined ? "–" : PERCENT.format(x));
const sig3 = (x) => (x === null || x === undefined ? "–" : typeof x === "number" ? DECIMAL.format(x) : String(x));

function dayLabel(iso) {
  const d = new Date(`${iso}T00:00:00Z`);
  return d.toLocaleDateString("en-US", { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" });
}

function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString("en-US", {
    month: "short", day: "numeric", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
}

function header(title, subtitle) {
  const pages = [["health", "City health"], ["map", "Hotspot map"], ["charts", "City charts"]];
  return el("header", {},
    el("h1", { text: title }),
    subtitle ? el("p", { class: "muted", text: subtitle }) : null,
    el("nav", {}, pages.map(([href, name]) => el("a", { href, text: name }))));
}

function citySelect(cities, selected, onChange) {
  const select = el("select", { id: "city", "aria-label": "City" },
    cities.map((c) => el("option", { value: c.dag_id, selected: c.dag_id === selected, text: c.title })));
  select.addEventListener("change", () => onChange(select.value));
  return el("label", { class: "picker" }, "City ", select);
}

function table(headings, rows, attributes = {}) {
  return el("table", attributes,
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))))));
}

/* ---- City health ------------------------------------------------------------------------ */

async function healthPage(root) {
  const cities = await getJSON("api/health");
  root.replaceChildren(header("City health", "Each city's loads against the calendar, the portal and its own history"));
  const summary = el("section", { class: "summary" },
    cities.map((c) => el("a", { href: `#${c.dag_id}`, class: `badge status-${c.status}`, "data-city": c.dag_id },
      `${c.title}: ${c.status}`)));
  root.append(summary);
  for (const city of cities) root.append(healthCard(city));
}

function healthCard(city) {
  const canvas = el("canvas", { class: "days", "data-days": city.days.length, "aria-label": `rows per day for ${city.title}` });
  const audit = city.audit
    ? `${city.audit.ago}: ${count(city.audit.days_checked)} days checked, ${count(city.audit.days_differing)} differing, ${count(city.audit.days_repaired)} repaired`
    : "no partition audit yet";
  const flagged = city.days.filter((d) => d.flagged);
  const card = el("section", { class: "card", id: city.dag_id, "data-city": city.dag_id, "data-status": city.status },
    el("div", { class: "card-head" },
      el("h2", { text: city.title }),
      el("span", { class: `status status-${city.status}`, text: city.status }),
      el("a", { class: "dag-link", href: `../dags/${encodeURIComponent(city.dag_id)}`, target: "_top", text: "Open DAG →" })),
    el("p", { class: "reason", text: city.reason }),
    el("dl", { class: "facts" },
      el("dt", { text: "Last success" }), el("dd", { text: city.last_success_ago ? `${city.last_success_ago} (${when(city.last_success_at)})` : "never" }),
      el("dt", { text: "Event lag" }), el("dd", { text: city.event_lag ? `${city.event_lag} behind now` : "–" }),
      el("dt", { text: "Rows stored" }), el("dd", { text: count(city.rows_in_table) }),
      el("dt", { text: "Latest audit" }), el("dd", { text: audit })),
    schemaDrift(city.schema_drift || []),
    el("div", { class: "chart-box" }, canvas),
    el("p", { class: "muted small" },
      `Rows per local day (${city.timezone}) for the last ${city.days.length} days, rejected share on the right axis. `,
      flagged.length
        ? el("strong", { class: "flagged", text: `${flagged.length} day(s) far below their weekday's median: ${flagged.map((d) => dayLabel(d.day)).join(", ")}` })
        : "No day far below its weekday's median.",
      " Grey: no load covered the day."));
  requestAnimationFrame(() => drawDays(canvas, city));
  return card;
}

/* The portal's columns that differ from the contract, open until a run no longer sees them. */
function schemaDrift(changes) {
  if (!changes.length) return null;
  return el("div", { class: "schema-drift" },
    el("h3", { text: "Schema drift at the portal" }),
    table(["Column", "Change", "Contract type", "Portal type", "Since"],
      changes.map((c) => [el("code", { text: c.column }), c.required ? `${c.change} (required)` : c.change,
        c.before ?? "–", c.after ?? "–", when(c.detected_at)])));
}

function drawDays(canvas, city) {
  const labels = city.days.map((d) => dayLabel(d.day));
  new Chart(canvas, {
    data: {
      labels,
      datasets: [
        {
          type: "bar", label: "rows", yAxisID: "rows",
          data: city.days.map((d) => d.rows),
          backgroundColor: city.days.map((d) => (d.flagged ? "#c62828" : d.rows === null ? "#bdbdbd" : "#1565c0")),
        },
        {
          type: "line", label: "rejected share", yAxisID: "rate", pointRadius: 0, borderWidth: 1.5,
          borderColor: "#ef6c00", data: city.days.map((d) => d.reject_rate), spanGaps: true,
        },
      ],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label: (item) => (item.dataset.yAxisID === "rate" ? `rejected ${share(item.raw)}` : `${count(item.raw)} rows`),
            afterLabel: (item) => {
              const d = city.days[item.dataIndex];
              return d.flagged && item.dataset.yAxisID === "rows" ? `far below its weekday's median of ${count(d.weekday_median)}` : "";
            },
          },
        },
      },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 10 } },
        rows: { position: "left", beginAtZero: true, ticks: { callback: (v) => count(v) } },
        rate: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { callback: (v) => share(v) } },
      },
    },
  });
}

/* ---- A run's validation report ---------------------------------------------------------- */

async function runPage(root) {
  const { dag, run } = root.dataset;
  const report = await getJSON(`api/runs/${encodeURIComponent(dag)}/${encodeURIComponent(run)}`);
  root.replaceChildren(el("h1", { text: "Validation report" }),
    el("p", { class: "muted", text: `${dag} · ${run}` }));
  if (!report.city) {
    root.append(el("p", { class: "notice", text: `${dag} is not a CityPulse city DAG: its runs have no validation report.` }));
    return;
  }
  if (report.run) root.append(runTasks(report.run));
  root.append(validationSection(report.validation), auditSection(report.audit), rejectSection(report));
}

function runTasks(run) {
  return el("section", { class: "tasks" },
    el("span", { class: `status state-${run.state}`, text: `run ${run.state}` }),
    run.tasks.map((t) => el("span", { class: `chip state-${t.state}`, title: `try ${t.try_number}`, text: `${t.task_id}: ${t.state ?? "not started"}` })));
}

function validationSection(validation) {
  const section = el("section", { class: "card", id: "validation" }, el("h2", { text: "Expectations" }));
  if (!validation) {
    section.append(el("p", { class: "notice", text: "Validation has not run for this run yet (or its report could not be stored)." }));
    return section;
  }
  const r = validation.report;
  add(section,
    el("p", {},
      el("span", { class: `status ${validation.passed ? "status-fresh" : "status-failing"}`, text: validation.passed ? "passed" : "failed" }),
      ` ${count(r.extracted)} records checked, ${count(r.rejected)} rejected (${share(r.rejected_share)}), ${when(validation.created_at)}`),
    validation.message ? el("p", { class: "notice", text: validation.message }) : null,
    table(["Expectation", "Column", "Result", "Unexpected", "Unexpected %"],
      (r.expectations || []).map((e) => [
        e.expectation, e.column ?? "–",
        el("td", { class: e.success ? "pass" : "fail", text: e.success ? "pass" : "fail" }),
        count(e.unexpected), e.unexpected_percent === null ? "–" : `${sig3(e.unexpected_percent)} %`,
      ]), { id: "expectations" }));
  const reasons = r.top_reasons || [];
  section.append(el("h3", { text: "Reject reasons" }),
    reasons.length
      ? table(["Reason", "Records"], reasons.map(([reason, n]) => [reason, count(n)]), { id: "reasons" })
      : el("p", { class: "muted", text: "No record was rejected." }));
  return section;
}

function auditSection(audit) {
  const section = el("section", { class: "card", id: "audit" }, el("h2", { text: "Load audit" }));
  if (!audit) {
    section.append(el("p", { class: "notice", text: "No audit row: this run has not loaded (yet)." }));
    return section;
  }
  const names = ["portal_rows", "extracted", "loaded", "inserted", "updated", "unchanged", "rejected"];
  const headings = ["portal count", "extracted", "loaded", "inserted", "updated", "unchanged", "rejected", "seconds"];
  section.append(
    el("p", { class: "muted", text: `window ${audit.window_start} → ${audit.window_end} (${audit.timezone}), finished ${when(audit.finished_at)}` }),
    table(headings, [[...names.map((n) => count(audit[n])), sig3(audit.seconds)]], { id: "audit-row" }));
  return section;
}

function rejectSection(report) {
  const section = el("section", { class: "card", id: "rejects" }, el("h2", { text: "Rejected records (sample)" }));
  if (!report.reject_samples.length) {
    section.append(el("p", { class: "muted", text: "No rejected record of this run is in the warehouse." }));
    return section;
  }
  for (const s of report.reject_samples) {
    section.append(el("details", {},
      el("summary", {}, el("code", { text: s.key ?? "(no key)" }), ` ${s.reason}`),
      el("pre", { text: JSON.stringify(s.record, null, 2) })));
  }
  return section;
}

/* ---- The hotspot map --------------------------------------------------------------------- */

/* A page about one city: its header, a city picker (reloads with ?city=), and its data.
   `offered` picks the cities the page is about (the map: those with a forecast to map). */
async function cityPage(root, title, subtitle, api, offered = () => true) {
  const known = await getJSON("api/cities");
  const cities = known.filter(offered);
  const named = known.find((c) => c.dag_id === root.dataset.city);
  // A city the page is not about gives way to the first it is; an unknown name stays (404).
  const city = root.dataset.city && (!named || offered(named)) ? root.dataset.city : cities[0]?.dag_id;
  const data = await getJSON(`api/${api}/${encodeURIComponent(city)}`);
  root.replaceChildren(header(title, subtitle),
    citySelect(cities, city, (next) => { location.search = `?city=${encodeURIComponent(next)}`; }));
  return data;
}

async function mapPage(root) {
  const data = await cityPage(root, "Hotspot map", "The published forecast per H3 hexagon, beside last week's incidents", "map", (c) => c.mapped);
  if (!data.cells.length) {
    root.append(el("p", { class: "notice", id: "no-forecast", text: `No forecast is published for ${data.title} yet: the weekly hotspot_retrain DAG writes one once the city has enough history.` }));
    return;
  }
  const published = data.published || {};
  add(root, el("p", { class: "published", "data-role": published.role },
    published.role === "candidate"
      ? `Published: the champion ${published.model_kind}, features as of ${dayLabel(data.features_as_of)}.`
      : `No candidate qualified: the best baseline (${published.model_kind}) is the published forecast, features as of ${dayLabel(data.features_as_of)}.`),
    published.decision ? el("p", { class: "muted small", text: `Decision: ${published.decision}` }) : null);
  const days = data.days;
  const dayButtons = el("div", { class: "days-picker", role: "group", "aria-label": "Forecast day" },
    days.map((d, i) => el("button", { type: "button", "data-day": d, "aria-pressed": i === 0 ? "true" : "false", text: dayLabel(d) })));
  const forecast = el("canvas", { id: "forecast", width: 560, height: 460, "aria-label": "forecast hexagons" });
  const observed = el("canvas", { id: "observed", width: 560, height: 460, "aria-label": "observed hexagons" });
  const caption = el("p", { class: "muted small", id: "forecast-caption" });
  root.append(dayButtons,
    el("div", { class: "maps" },
      el("figure", {}, forecast, caption),
      el("figure", {}, observed, el("figcaption", { class: "muted small",
        text: `Observed incidents per hexagon, ${dayLabel(data.observed_first_day)} – ${dayLabel(data.observed_last_day)} (the week the forecast starts from): ${count(data.observed.reduce((a, c) => a + c.incidents, 0))} incidents in ${count(data.observed.length)} hexagons` }))),
    modelTable(data.models));
  const frame = projection(data);
  const show = (day) => {
    for (const b of dayButtons.children) b.setAttribute("aria-pressed", String(b.dataset.day === day));
    const flagged = drawHexagons(forecast, frame, data.cells.map((c) => ({ boundary: c.boundary, value: c.probability[day] ?? 0, flagged: c.flagged[day] })), "probability");
    forecast.dataset.day = day;
    caption.textContent = `Forecast for ${dayLabel(day)}: probability that each of ${count(data.cells.length)} hexagons is a hotspot; ${count(flagged)} flagged (outlined).`;
  };
  dayButtons.addEventListener("click", (event) => { if (event.target.dataset.day) show(event.target.dataset.day); });
  show(days[0]);
  drawHexagons(observed, frame, data.observed.map((c) => ({ boundary: c.boundary, value: c.incidents })), "incidents");
}

function projection(data) {
  const b = data.bbox;
  const kx = Math.cos(((b.min_lat + b.max_lat) / 2) * Math.PI / 180);
  return { b, kx, width: (b.max_lon - b.min_lon) * kx, height: b.max_lat - b.min_lat };
}

function drawHexagons(canvas, frame, cells, what) {
  const ctx = canvas.getContext("2d");
  const pad = 24;
  const scale = Math.min((canvas.width - 2 * pad) / frame.width, (canvas.height - 2 * pad - 30) / frame.height);
  const xy = ([lat, lon]) => [pad + (lon - frame.b.min_lon) * frame.kx * scale, pad + (frame.b.max_lat - lat) * scale];
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#fafafa";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(...cells.map((c) => c.value), 0) || 1;
  let flagged = 0;
  for (const cell of cells) {
    ctx.beginPath();
    cell.boundary.forEach((point, i) => (i ? ctx.lineTo(...xy(point)) : ctx.moveTo(...xy(point))));
    ctx.closePath();
    ctx.fillStyle = ramp(cell.value / top, what === "probability" ? RED : BLUE);
    ctx.fill();
    ctx.lineWidth = cell.flagged ? 2 : 0.5;
    ctx.strokeStyle = cell.flagged ? "#000" : "rgba(0,0,0,0.25)";
    ctx.stroke();
    if (cell.flagged) flagged += 1;
  }
  // The city's bounding box (from its contract), drawn over the hexagons.
  ctx.strokeStyle = "#616161";
  ctx.lineWidth = 1;
  ctx.setLineDash([4, 3]);
  ctx.strokeRect(pad, pad, frame.width * scale, frame.height * scale);
  ctx.setLineDash([]);
  canvas.dataset.hexagons = String(cells.length);
  scaleBar(ctx, scale, pad, canvas.height - 16);
  legend(ctx, canvas.width - 190, canvas.height - 26, top, what);
  return flagged;
}

const RED = [[255, 247, 236], [253, 187, 132], [239, 101, 72], [179, 0, 0]];
const BLUE = [[247, 251, 255], [158, 202, 225], [66, 146, 198], [8, 69, 148]];

function ramp(t, stops) {
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c.join(",")})`;
}

function scaleBar(ctx, scale, x, y) {
  const pxPerKm = scale / 111.32;
  const km = [0.5, 1, 2, 5, 10, 20, 50].find((k) => k * pxPerKm >= 60) ?? 50;
  ctx.fillStyle = "#212121";
  ctx.fillRect(x, y, km * pxPerKm, 4);
  ctx.font = "12px sans-serif";
  ctx.fillText(`${km} km`, x + km * pxPerKm + 6, y + 5);
}

function legend(ctx, x, y, top, what) {
  for (let i = 0; i < 100; i += 1) {
    ctx.fillStyle = ramp(i / 99, what === "probability" ? RED : BLUE);
    ctx.fillRect(x + i, y, 1, 10);
  }
  ctx.fillStyle = "#212121";
  ctx.font = "11px sans-serif";
  ctx.fillText("0", x - 10, y + 9);
  ctx.fillText(what === "probability" ? share(top) : count(top), x + 104, y + 9);
}

function modelTable(models) {
  const metricNames = [...new Set(models.flatMap((m) => Object.keys(m.metrics || {})))]
    .filter((k) => typeof models.find((m) => m.metrics && k in m.metrics).metrics[k] === "number");
  return el("section", { class: "card", id: "models" },
    el("h2", { text: "The published model against its baselines" }),
    table(["model", "role", "published", ...metricNames, "decision"],
      models.map((m) => [
        m.model_kind, m.role,
        el("td", { class: m.published ? "pass" : "", text: m.published ? "published" : "" }),
        ...metricNames.map((k) => {
          const spread = m.metrics?.sd?.[k];
          return spread === undefined || spread === null ? sig3(m.metrics?.[k]) : `${sig3(m.metrics?.[k])} ± ${sig3(spread)}`;
        }),
        m.decision ?? "",
      ])),
    el("p", { class: "muted small", text: models[0] ? `Means across the backtest folds (± their standard deviation); newest test window ${models[0].test_start} – ${models[0].test_end}.` : "" }));
}

/* ---- The source projects' charts --------------------------------------------------------- */

async function chartsPage(root) {
  const charts = await cityPage(root, "City charts", "The source projects' questions, from the warehouse's views", "charts");
  const grid = el("div", { class: "grid" });
  root.append(grid);
  for (const chart of charts) grid.append(chartCard(chart));
}

function chartCard(chart) {
  const card = el("section", { class: "card chart", "data-view": chart.view, "data-kind": chart.kind },
    el("h2", { text: chart.title }),
    chart.note ? el("p", { class: "muted small", text: chart.note }) : null);
  if (!chart.labels.length) {
    card.append(el("p", { class: "muted", text: "No rows yet." }));
    return card;
  }
  const format = chart.percent ? share : count;
  if (chart.kind === "heatmap") {
    card.append(heatTable(chart, format));
    return card;
  }
  const canvas = el("canvas", { "data-labels": chart.labels.length });
  card.append(el("div", { class: "chart-box" }, canvas));
  const palette = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#9e9d24"];
  requestAnimationFrame(() => new Chart(canvas, {
    type: chart.kind,
    data: {
      labels: chart.kind === "line" ? chart.labels.map(dayLabelIfDate) : chart.labels,
      datasets: chart.series.map((s, i) => ({
        label: s.name, data: s.values, backgroundColor: palette[i % palette.length],
        borderColor: palette[i % palette.length], pointRadius: 0,
      })),
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      indexAxis: chart.kind === "bar" && chart.labels.length > 8 ? "y" : "x",
      plugins: {
        legend: { display: chart.series.length > 1, position: "bottom" },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${format(item.raw)}` } },
      },
      scales: chart.kind === "bar"
        ? { x: { stacked: true, ticks: { callback: tickFormat(chart, format, "x") } }, y: { stacked: true, ticks: { callback: tickFormat(chart, format, "y") } } }
        : { y: { beginAtZero: true, ticks: { callback: (v) => format(v) } }, x: { ticks: { maxTicksLimit: 12, maxRotation: 0 } } },
    },
  }));
  return card;
}

function tickFormat(chart, format, axis) {
  const horizontal = chart.labels.length > 8;
  const valueAxis = horizontal ? "x" : "y";
  return function (value) {
    return axis === valueAxis ? format(value) : this.getLabelForValue(value);
  };
}

function dayLabelIfDate(label) {
  return /^\d{4}-\d{2}-\d{2}$/.test(label) ? dayLabel(label) : label;
}

function heatTable(chart, format) {
  const top = Math.max(...chart.series.flatMap((s) => s.values.map((v) => v ?? 0)), 1);
  return el("div", { class: "heat-scroll" }, el("table", { class: "heat" },
    el("thead", {}, el("tr", {}, el("th", { text: "" }), chart.labels.map((l) => el("th", { text: l })))),
    el("tbody", {}, chart.series.map((s) => el("tr", {}, el("th", { text: s.name }),
      s.values.map((v) => el("td", {
        style: `background:${ramp((v ?? 0) / top, BLUE)};color:${(v ?? 0) / top > 0.55 ? "#fff" : "#212121"}`,
        title: `${s.name} ${chart.x} ${v === null ? "" : ""}${format(v ?? 0)}`,
        text: v === null ? "" : format(v),
      })))))));
}

/* ---- Boot ------------------------------------------------------------------------------- */

const PAGES = { health: healthPage, run: runPage, map: mapPage, charts: chartsPage };

window.addEventListener("DOMContentLoaded", async () => {
  const root = document.getElementById("app");
  try {
    await PAGES[root.dataset.page](root);
    root.dataset.ready = "true";
  } catch (error) {
    root.replaceChildren(el("p", { class: "notice error", text: `Could not load this page: ${error.message}` }));
    root.dataset.ready = "error";
  }
});
