// The System menu page: log in, list the commands, confirm, run, follow the output live.
// Plain browser JavaScript, no framework and nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const SOURCES = ["core", "plugin", "custom"];
const OUTPUT_LIMIT = 256 * 1024; // characters of output kept on the page per run

const state = {
  user: null, // {name, csrf_token, may: {run: ["source:action", ...], history, kill_any, audit}, ...}
  commands: [], // client specs, in menu order
  running: new Map(), // "source/action" -> {id, started}
  shown: null, // id of the run in the output panel
  stream: null, // its EventSource
  verdicts: new Map(), // "source/action" -> the server's check: {runnable, why, fix}
};

// -- HTTP ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

async function api(method, path, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET" && state.user && state.user.csrf_token) {
    init.headers["X-CSRF-Token"] = state.user.csrf_token;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data);
  }
  return { status: response.status, data, headers: response.headers };
}

function randomKey() {
  // crypto.randomUUID needs a secure context; a Pi on the LAN is often plain http.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// -- Confirm text: HTML from the config, rebuilt from an allow-list -----------

const ALLOWED = new Set([
  "B", "STRONG", "I", "EM", "U", "S", "BR", "P", "UL", "OL", "LI", "CODE", "PRE", "SMALL",
  "SPAN", "DIV", "A", "H3", "H4", "H5", "H6", "BLOCKQUOTE", "HR", "KBD", "SUB", "SUP",
]);
const DROPPED = new Set(["SCRIPT", "STYLE", "TEMPLATE", "IFRAME", "OBJECT", "EMBED", "SVG", "MATH", "NOSCRIPT", "TITLE", "HEAD"]);

function sanitized(html) {
  // DOMParser's document runs no scripts and loads nothing; only text and allowed
  // tags are copied out, without any attribute but a safe link target.
  const parsed = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  const out = document.createDocumentFragment();
  const copy = (from, to) => {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        to.append(document.createTextNode(node.textContent));
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const tag = node.tagName.toUpperCase();
        if (DROPPED.has(tag)) continue;
        if (!ALLOWED.has(tag)) {
          copy(node, to); // unknown tag: keep its text
          continue;
        }
        const element = document.createElement(tag.toLowerCase());
        if (tag === "A") {
          const href = node.getAttribute("href") || "";
          if (/^https?:\/\//i.test(href)) {
            element.href = href;
            element.rel = "noopener noreferrer";
            element.target = "_blank";
          }
        }
        copy(node, element);
        to.append(element);
      }
    }
  };
  copy(parsed.body, out);
  return out;
}

// -- Views --------------------------------------------------------------------

function notice(text) {
  $("notice").textContent = text || "";
}

function showLogin(message) {
  state.user = null;
  closeStream();
  $("menu").hidden = $("run").hidden = $("history").hidden = $("logout").hidden = $("audit").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login").elements.user.focus();
}

function menuOrder(specs) {
  // Core, plugin, custom; a divider between non-empty groups and where the config
  // puts one, but never at the edge of a group or twice in a row.
  const items = [];
  for (const source of SOURCES) {
    const group = [];
    for (const spec of specs[source] || []) {
      if (spec.action === "divider") {
        if (group.length && group[group.length - 1].action !== "divider") group.push(spec);
      } else {
        group.push(spec);
      }
    }
    while (group.length && group[group.length - 1].action === "divider") group.pop();
    if (!group.length) continue;
    if (items.length) items.push({ action: "divider", source });
    items.push(...group);
  }
  return items;
}

function key(spec) {
  return `${spec.source}/${spec.action}`;
}

function may(what) {
  return !!(state.user && state.user.may && state.user.may[what]);
}

function mayRun(spec) {
  return !!(state.user && state.user.may && state.user.may.run.includes(`${spec.source}:${spec.action}`));
}

function renderMenu() {
  const list = $("commands");
  list.replaceChildren();
  for (const spec of state.commands) {
    const li = document.createElement("li");
    if (spec.action === "divider") {
      li.className = "divider";
      li.setAttribute("role", "separator");
      list.append(li);
      continue;
    }
    li.className = "command";
    li.dataset.key = key(spec);
    let label;
    if (mayRun(spec)) {
      label = document.createElement("button");
      label.type = "button";
      label.className = "run";
      label.addEventListener("click", () => ask(spec));
    } else {
      // seen, not run: a viewer reads the menu and its history
      label = document.createElement("span");
      label.className = "readonly";
    }
    label.textContent = spec.name;
    const status = document.createElement("span");
    status.className = "state";
    status.setAttribute("aria-live", "polite");
    li.append(label, status);
    list.append(li);
  }
  $("empty").hidden = state.commands.length > 0;
  for (const [k, run] of state.running) markRunning(k, run);
  showVerdicts();
}

// -- Will it work? The server checks each command as its own user (sysmenu doctor) --

async function loadVerdicts() {
  try {
    const { data } = await api("GET", "api/status");
    state.verdicts = new Map((data.commands || []).map((v) => [`${v.source}/${v.action}`, v]));
    showVerdicts();
  } catch {
    // the menu works without it
  }
}

function showVerdicts() {
  for (const spec of state.commands) {
    const li = commandItem(key(spec));
    const verdict = state.verdicts.get(key(spec));
    if (!li || !verdict || verdict.runnable !== false || li.querySelector(".warning")) continue;
    const warning = document.createElement("span");
    warning.className = "warning";
    warning.id = `warning-${state.commands.indexOf(spec)}`;
    warning.textContent = `⚠ ${spec.name} will fail: ${verdict.why}${verdict.fix ? `. Fix: ${verdict.fix}` : ""}`;
    const label = li.firstElementChild; // the run button, or the name of a command one may only see
    label.setAttribute("aria-describedby", warning.id);
    label.after(warning);
  }
}

function commandItem(k) {
  return document.querySelector(`li.command[data-key="${CSS.escape(k)}"]`);
}

function seconds(s) {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
}

function markRunning(k, run) {
  const li = commandItem(k);
  if (!li) return;
  const button = li.querySelector("button.run");
  if (button) button.disabled = true;
  li.setAttribute("aria-busy", "true");
  const status = li.querySelector(".state");
  status.className = "state";
  status.textContent = `running ${seconds(Math.max(0, Date.now() / 1000 - run.started))}`;
}

function markDone(k, run) {
  const li = commandItem(k);
  if (!li) return;
  const button = li.querySelector("button.run");
  if (button) button.disabled = false;
  li.removeAttribute("aria-busy");
  const status = li.querySelector(".state");
  const good = run.state === "ok";
  status.className = `state ${good ? "ok" : "bad"}`;
  status.textContent = `${outcome(run)}${run.duration != null ? ` in ${seconds(run.duration)}` : ""}`;
}

function outcome(run) {
  switch (run.state) {
    case "ok": return run.returncode ? `✓ done (exit code ${run.returncode} ignored)` : "✓ done";
    case "running": return "running";
    case "timeout": return "✗ timed out";
    case "killed": return "✗ killed";
    case "interrupted": return "✗ interrupted by a server stop";
    default:
      if (run.signal != null) return `✗ ended by signal ${run.signal}`;
      return `✗ failed with exit code ${run.returncode}`;
  }
}

setInterval(() => {
  for (const [k, run] of state.running) markRunning(k, run);
  const shown = [...state.running.values()].find((r) => r.id === state.shown);
  if (shown) $("run-state").textContent = `Running for ${seconds(Date.now() / 1000 - shown.started)}`;
}, 1000);

// -- Running a command ---------------------------------------------------------

let asking = null; // the spec the dialog is open for

// -- Arguments: one input per declared argument, by type ----------------------

function argumentField(arg) {
  const id = `arg-${arg.name}`;
  const label = document.createElement("label");
  label.className = arg.type === "bool" ? "arg check" : "arg";
  const title = document.createElement("span");
  title.textContent = arg.label || arg.name;
  let input;
  if (arg.type === "choice") {
    input = document.createElement("select");
    if (!arg.required) input.append(new Option("", ""));
    for (const choice of arg.choices) input.append(new Option(choice.label, choice.value));
    input.value = arg.default != null ? String(arg.default) : arg.required ? arg.choices[0].value : "";
  } else {
    input = document.createElement("input");
    if (arg.type === "bool") {
      input.type = "checkbox";
      input.checked = arg.default === true;
    } else if (arg.type === "int" || arg.type === "float") {
      input.type = "number";
      input.inputMode = arg.type === "int" ? "numeric" : "decimal";
      input.step = arg.type === "int" ? "1" : "any";
      if (arg.min != null) input.min = String(arg.min);
      if (arg.max != null) input.max = String(arg.max);
    } else {
      input.type = arg.secret ? "password" : "text";
      input.autocomplete = "off";
      input.spellcheck = false;
      input.autocapitalize = "none";
      if (arg.max_length) input.maxLength = arg.max_length;
      if (arg.pattern) {
        try {
          new RegExp(`^(?:${arg.pattern})$`, "v"); // the browser's check, where the syntax agrees
          input.pattern = arg.pattern;
        } catch {
          // the server's check still applies, and its message shows beside the field
        }
      }
    }
    if (arg.type !== "bool" && arg.default != null) input.value = String(arg.default);
  }
  input.id = id;
  input.name = arg.name;
  input.dataset.type = arg.type;
  input.required = !!arg.required && arg.type !== "bool";
  const error = document.createElement("span");
  error.className = "error";
  error.id = `${id}-error`;
  error.setAttribute("role", "alert");
  const described = [error.id];
  const parts = arg.type === "bool" ? [input, title] : [title, input];
  if (arg.description) {
    const hint = document.createElement("small");
    hint.id = `${id}-hint`;
    hint.textContent = arg.description;
    described.unshift(hint.id);
    parts.push(hint);
  }
  input.setAttribute("aria-describedby", described.join(" "));
  label.append(...parts, error);
  return label;
}

function argumentValues(spec) {
  // The typed values of the dialog's fields; empty optional fields are left out.
  const values = {};
  for (const arg of spec.arguments || []) {
    const input = $(`arg-${arg.name}`);
    if (arg.type === "bool") values[arg.name] = input.checked;
    else if (input.value === "") continue;
    else if (arg.type === "int" || arg.type === "float") values[arg.name] = Number(input.value);
    else values[arg.name] = input.value;
  }
  return values;
}

function argumentErrors(spec, errors) {
  // Each message beside its field; true when at least one was shown there.
  let shown = false;
  let first = null;
  for (const arg of spec.arguments || []) {
    const message = (errors && errors[arg.name]) || "";
    $(`arg-${arg.name}-error`).textContent = message;
    $(`arg-${arg.name}`).setAttribute("aria-invalid", message ? "true" : "false");
    if (message && !first) first = $(`arg-${arg.name}`);
    shown = shown || !!message;
  }
  if (first) first.focus();
  return shown;
}

function ask(spec) {
  const args = spec.arguments || [];
  if (!spec.confirm && !spec.fresh_credentials && !args.length) {
    execute(spec).then((error) => error && failed(error, spec));
    return;
  }
  asking = spec;
  $("confirm-title").textContent = spec.name;
  $("confirm-text").replaceChildren(spec.confirm ? sanitized(spec.confirm) : "");
  $("confirm-args").replaceChildren(...args.map(argumentField));
  $("confirm-password-label").hidden = !spec.fresh_credentials;
  $("confirm-password").required = !!spec.fresh_credentials;
  $("confirm-password").value = "";
  $("confirm-error").textContent = "";
  $("confirm-ok").disabled = false;
  $("confirm").showModal();
  const firstArg = args.length ? $(`arg-${args[0].name}`) : null;
  (firstArg || (spec.fresh_credentials ? $("confirm-password") : $("confirm-cancel"))).focus();
}

$("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));
$("confirm").addEventListener("close", () => {
  asking = null;
});
$("confirm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const spec = asking;
  if (!spec) return;
  $("confirm-ok").disabled = true;
  if (spec.fresh_credentials) {
    try {
      const { data } = await api("POST", "api/login", { user: state.user.name, pass: $("confirm-password").value });
      state.user = data;
    } catch (error) {
      $("confirm-error").textContent = error.status === 403 ? "Wrong password" : error.message;
      $("confirm-ok").disabled = false;
      $("confirm-password").select();
      return;
    }
  }
  if (spec.arguments && spec.arguments.length) {
    // The server checks the values; its per-argument errors go beside the fields.
    const error = await execute(spec, argumentValues(spec));
    if (error && error.status === 400 && error.data && argumentErrors(spec, error.data.errors)) {
      $("confirm-ok").disabled = false;
      return;
    }
    $("confirm").close("ok");
    if (error) failed(error, spec);
    return;
  }
  $("confirm").close("ok");
  execute(spec).then((error) => error && failed(error, spec));
});

async function execute(spec, values) {
  // Starts a run and follows it; returns the error instead when it could not start.
  const k = key(spec);
  const li = commandItem(k);
  const button = li && li.querySelector("button.run");
  if (button) button.disabled = true;
  notice("");
  try {
    const path = `api/system/commands/${encodeURIComponent(spec.source)}/${encodeURIComponent(spec.action)}`;
    const body = values === undefined ? undefined : { arguments: values };
    const { data } = await api("POST", path, body, { Prefer: "respond-async", "Idempotency-Key": randomKey() });
    const run = { id: data.id, started: Date.now() / 1000, name: spec.name, key: k };
    state.running.set(k, run);
    markRunning(k, run);
    follow(run.id, spec.name, values);
    return null;
  } catch (error) {
    if (button) button.disabled = false;
    return error;
  }
}

function failed(error, spec) {
  if (error.status === 403 && !error.message.includes("password")) {
    return refreshUser().then((user) => (user ? notice(error.message) : showLogin("Your session has ended: log in again")));
  }
  const where = spec ? commandItem(key(spec)) : null;
  if (where) {
    const status = where.querySelector(".state");
    status.className = "state bad";
    status.textContent = `✗ ${error.message}`;
  }
  notice(`${spec ? spec.name + ": " : ""}${error.message}`);
}

// -- The output panel ----------------------------------------------------------

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}

function appendOutput(stream, text) {
  const pre = $("run-output");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const span = document.createElement("span");
  if (stream === "stderr") span.className = "stderr";
  span.textContent = text;
  pre.append(span);
  while (pre.textContent.length > OUTPUT_LIMIT && pre.firstChild && pre.childNodes.length > 1) pre.firstChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function argumentsText(values) {
  const entries = Object.entries(values || {});
  return entries.map(([name, value]) => `${name} = ${JSON.stringify(value)}`).join(", ");
}

function mayKill(id) {
  if (may("kill_any")) return true;
  const run = [...state.running.values()].find((r) => r.id === id);
  return !!run && state.user.may.run.includes(run.key.replace("/", ":"));
}

function follow(id, name, values) {
  closeStream();
  state.shown = id;
  $("run").hidden = false;
  $("run-title").textContent = name;
  $("run-args").textContent = argumentsText(values);
  $("run-state").className = "";
  $("run-state").textContent = "Starting…";
  $("run-output").replaceChildren();
  $("kill").hidden = !mayKill(id);
  $("kill").disabled = false;
  const source = new EventSource(`api/runs/${id}/events`);
  state.stream = source;
  source.addEventListener("start", (event) => {
    const start = JSON.parse(event.data);
    const run = [...state.running.values()].find((r) => r.id === id);
    if (run) run.started = start.started;
    if (start.arguments) $("run-args").textContent = argumentsText(start.arguments);
  });
  source.addEventListener("output", (event) => {
    const { stream, text } = JSON.parse(event.data);
    appendOutput(stream, text);
  });
  source.addEventListener("end", (event) => {
    source.close();
    if (state.stream === source) state.stream = null;
    finished(JSON.parse(event.data));
  });
  source.onerror = () => {
    // The stream broke before its end (server restart, network): read the run instead.
    source.close();
    if (state.stream === source) state.stream = null;
    setTimeout(() => show(id), 1000);
  };
}

function finished(run) {
  for (const [k, r] of state.running) {
    if (r.id === run.id) {
      state.running.delete(k);
      markDone(k, run);
    }
  }
  if (state.shown === run.id) {
    $("kill").hidden = true;
    $("run-state").className = run.state === "ok" ? "ok" : "bad";
    $("run-state").textContent = `${outcome(run)}${run.duration != null ? ` in ${seconds(run.duration)}` : ""}`;
  }
  loadHistory();
}

async function show(id) {
  try {
    const { data: run } = await api("GET", `api/runs/${id}`);
    if (run.state === "running") {
      follow(id, run.name, run.arguments);
      return;
    }
    closeStream();
    state.shown = id;
    $("run").hidden = false;
    $("run-title").textContent = run.name;
    $("run-args").textContent = argumentsText(run.arguments);
    $("run-output").replaceChildren();
    if (run.stdout) appendOutput("stdout", run.stdout);
    if (run.stderr) appendOutput("stderr", run.stderr);
    finished(run);
  } catch (error) {
    failed(error);
  }
}

$("kill").addEventListener("click", async () => {
  const id = state.shown;
  $("kill").disabled = true;
  try {
    await api("POST", `api/runs/${id}/kill`);
    const stillRunning = [...state.running.values()].some((r) => r.id === id);
    if (stillRunning && state.shown === id) $("run-state").textContent = "Killing…";
  } catch (error) {
    $("kill").disabled = false;
    failed(error);
  }
});

async function loadHistory() {
  try {
    const { data } = await api("GET", "api/runs?limit=10");
    const list = $("runs");
    list.replaceChildren();
    for (const run of data.runs) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const name = document.createElement("span");
      name.textContent = run.name;
      const what = document.createElement("span");
      what.className = run.state === "ok" ? "ok" : run.state === "running" ? "" : "bad";
      what.textContent = outcome(run);
      const when = document.createElement("time");
      when.dateTime = new Date(run.started * 1000).toISOString();
      when.textContent = new Date(run.started * 1000).toLocaleString();
      button.append(name, what, when);
      button.addEventListener("click", () => show(run.id));
      li.append(button);
      list.append(li);
    }
    $("history").hidden = data.runs.length === 0;
  } catch (error) {
    if (error.status !== 403) notice(error.message);
  }
}

// -- Apps asking for a key (Application Keys flow) ------------------------------

const KEY_POLL = 2000; // ms between looks for new requests while logged in
let keyRequest = null; // the request the dialog is open for
const dismissed = new Set(); // user tokens closed with Escape: not asked again on this page

async function checkKeyRequests() {
  if (!state.user || $("appkey").open || $("confirm").open) return;
  let data;
  try {
    ({ data } = await api("GET", "api/plugin/appkeys"));
  } catch {
    return;
  }
  const next = Object.values(data.pending).find((r) => !dismissed.has(r.user_token));
  if (!next) return;
  keyRequest = next;
  const from = next.remote_address || "an unknown address";
  $("appkey-text").textContent =
    `The app “${next.app_id}” at ${from} asks for an API key of ${state.user.name}. ` +
    "Allow it only if you started this from that app.";
  const stale = !state.user.fresh_until || state.user.fresh_until * 1000 < Date.now();
  $("appkey-password-label").hidden = !stale;
  $("appkey-password").required = stale;
  $("appkey-password").value = "";
  $("appkey-error").textContent = "";
  $("appkey").showModal();
}
setInterval(checkKeyRequests, KEY_POLL);

async function decideKey(approve) {
  const request = keyRequest;
  if (!request) return;
  try {
    if (!$("appkey-password-label").hidden) {
      const { data } = await api("POST", "api/login", { user: state.user.name, pass: $("appkey-password").value });
      state.user = data;
    }
    await api("POST", `plugin/appkeys/decision/${encodeURIComponent(request.user_token)}`, { decision: approve });
  } catch (error) {
    if (error.status === 404) {
      $("appkey").close("gone");
      notice("That key request expired or was decided elsewhere.");
      return;
    }
    $("appkey-error").textContent = error.status === 403 ? "Wrong password" : error.message;
    return;
  }
  $("appkey").close(approve ? "allowed" : "denied");
  notice(approve ? `“${request.app_id}” got its key.` : `“${request.app_id}” was denied.`);
}

$("appkey-form").addEventListener("submit", (event) => {
  event.preventDefault();
  decideKey(true);
});
$("appkey-deny").addEventListener("click", () => decideKey(false));
$("appkey").addEventListener("cancel", () => keyRequest && dismissed.add(keyRequest.user_token));
$("appkey").addEventListener("close", () => {
  keyRequest = null;
});

// -- The audit log (admins) ------------------------------------------------------

function auditDetail(entry) {
  return Object.entries(entry.detail || {})
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

async function loadAudit() {
  const form = $("audit-filter");
  const params = new URLSearchParams({ limit: "50" });
  for (const name of ["since", "user", "event"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  $("audit-error").textContent = "";
  try {
    const { data } = await api("GET", `api/audit?${params}`);
    const body = $("audit-rows");
    body.replaceChildren();
    for (const entry of data.entries) {
      const tr = document.createElement("tr");
      const when = document.createElement("time");
      when.dateTime = new Date(entry.ts * 1000).toISOString();
      when.textContent = new Date(entry.ts * 1000).toLocaleString();
      const cells = [when, entry.event, entry.user || "-", entry.client || "-", auditDetail(entry)];
      for (const content of cells) {
        const td = document.createElement("td");
        td.append(content);
        tr.append(td);
      }
      body.append(tr);
    }
    $("audit-empty").hidden = data.entries.length > 0;
    $("audit").hidden = false;
  } catch (error) {
    $("audit").hidden = false;
    $("audit-error").textContent = error.message;
  }
}

$("audit-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadAudit();
});

// -- Start --------------------------------------------------------------------

async function refreshUser() {
  const { data } = await api("GET", "api/currentuser");
  return data && data.name ? data : null;
}

async function loadMenu() {
  $("login").hidden = true;
  $("who").textContent = state.user.name;
  $("logout").hidden = false;
  try {
    const noRuns = { data: { runs: [] } }; // a user who may read no run
    const [{ data: specs }, { data: running }] = await Promise.all([
      api("GET", "api/system/commands"),
      api("GET", "api/runs?state=running&limit=100").catch((error) => {
        if (error.status === 403) return noRuns;
        throw error;
      }),
    ]);
    state.commands = menuOrder(specs);
    state.running.clear();
    for (const run of running.runs) {
      const k = `${run.source}/${run.action}`;
      state.running.set(k, { id: run.id, started: run.started, key: k });
    }
    $("menu").hidden = false;
    renderMenu();
    const latest = running.runs[0];
    if (latest) follow(latest.id, latest.name);
    loadHistory();
    loadVerdicts();
    if (may("audit")) loadAudit();
  } catch (error) {
    if (error.status === 403) {
      notice("Your user may not see or run any system command.");
    } else {
      notice(error.message);
    }
  }
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const { data } = await api("POST", "api/login", { user: form.elements.user.value, pass: form.elements.pass.value });
    state.user = data;
    form.reset();
    await loadMenu();
  } catch (error) {
    $("login-error").textContent = error.message;
    form.elements.pass.select();
  } finally {
    button.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "api/logout");
  } catch (error) {
    if (error.status !== 403) return notice(error.message);
  }
  notice("");
  showLogin();
});

(async () => {
  try {
    state.user = await refreshUser();
  } catch (error) {
    notice(error.message);
  }
  if (state.user) await loadMenu();
  else showLogin();
})();
