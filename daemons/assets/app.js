// jobsched Web UI: progressive enhancement of the server-rendered pages. Every action goes to the same
// JSON API the CLI uses, with the session's CSRF token; the server checks permissions there.
"use strict";
(function () {
  const CSRF_COOKIE = "jobsched_csrf";
  const CSRF_HEADER = "x-csrf-token";

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === name) return decodeURIComponent(v.join("="));
    }
    return "";
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers[CSRF_HEADER] = cookie(CSRF_COOKIE);
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, data: { error: { code: "network", message: "the server could not be reached: " + e.message } } };
    }
    let data = null;
    const text = await res.text();
    if (text) { try { data = JSON.parse(text); } catch (_) { data = { error: { code: "bad_answer", message: text.slice(0, 300) } }; } }
    if (res.status === 401 && !url.startsWith("/api/auth/login")) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    return { ok: res.ok, status: res.status, data };
  }

  function errorOf(r) {
    return (r.data && r.data.error) || { code: "error", message: "the request failed (" + r.status + ")" };
  }

  // ---- messages -----------------------------------------------------------------------------------
  function flash(text, bad) {
    const f = document.querySelector(".flash");
    if (!f) { if (bad) alert(text); return; }
    f.textContent = text;
    f.classList.toggle("bad", !!bad);
    f.hidden = false;
    f.scrollIntoView({ block: "nearest" });
  }

  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error, .form-error").forEach((e) => { e.hidden = true; e.textContent = ""; });
  }

  // The API names the field it refuses: "invalid cron_expression: …" (or a path such as "params.x").
  function showError(form, err) {
    const m = /^invalid ([A-Za-z0-9_.\[\]]+): /.exec(err.message || "");
    if (m && form) {
      const field = m[1].split(/[.\[]/)[0];
      const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
      const slot = (input && input.closest(".field") && input.closest(".field").querySelector(".field-error")) ||
        form.querySelector(`[data-field-for="${CSS.escape(field)}"]`);
      if (slot) {
        slot.textContent = err.message;
        slot.hidden = false;
        if (input) {
          input.setAttribute("aria-invalid", "true");
          if (slot.id) input.setAttribute("aria-describedby", slot.id);
          input.focus();
        }
        return;
      }
    }
    const general = form && form.querySelector(".form-error");
    if (general) { general.textContent = err.message; general.hidden = false; }
    else flash(err.message, true);
  }

  function then(spec, data) {
    if (!spec || spec === "reload") { location.reload(); return; }
    if (spec === "show-token") return;
    location.href = spec.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent((data && data[k]) || ""));
  }

  // ---- reading forms ------------------------------------------------------------------------------
  function localToIso(v) {
    if (!v) return undefined;
    const d = new Date(v);
    return isNaN(d) ? v : d.toISOString();
  }

  function isoToLocal(v) {
    if (!v) return "";
    const d = new Date(v.endsWith("Z") ? v : v + "Z");
    if (isNaN(d)) return v;
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function valueOf(input) {
    const t = input.dataset.type;
    if (input.type === "checkbox") return input.checked;
    const v = input.value;
    if (t === "number") return v.trim() === "" ? undefined : Number(v);
    if (t === "time") return localToIso(v);
    if (t === "labels") {
      const out = {};
      for (const line of v.split("\n")) {
        const s = line.trim();
        if (!s) continue;
        const i = s.indexOf("=");
        if (i < 0) throw { field: input.name, message: `invalid ${input.name}: '${s}' is not key=value` };
        out[s.slice(0, i).trim()] = s.slice(i + 1).trim();
      }
      return out;
    }
    return v;
  }

  function params(form) {
    const out = {};
    for (const row of form.querySelectorAll(".param-row")) {
      const name = row.querySelector('[name="param-name"]').value.trim();
      const raw = row.querySelector('[name="param-value"]').value;
      const secret = row.querySelector('[name="param-secret"]').checked;
      if (!name) continue;
      if (secret) out[name] = raw === "***" ? "***" : { secret: raw };
      else if (row.hasAttribute("data-json")) {
        try { out[name] = JSON.parse(raw); } catch (_) { out[name] = raw; }
      } else out[name] = raw;
    }
    return out;
  }

  function shown(el, type) {
    const f = el.closest("[data-show]");
    return !f || f.dataset.show.split(" ").includes(type);
  }

  function collect(form) {
    const kind = form.dataset.kind;
    if (kind === "execute") {
      const raw = form.querySelector('[name="params"]').value.trim();
      if (!raw) return undefined;
      let p;
      try { p = JSON.parse(raw); } catch (e) { throw { message: "invalid params: not JSON: " + e.message }; }
      return { params: p };
    }
    if (kind === "document") {
      // The whole body is the JSON of the form's one text area (the alert configuration).
      const raw = form.querySelector("textarea").value;
      try { return JSON.parse(raw); } catch (e) { throw { message: "invalid document: not JSON: " + e.message }; }
    }
    const body = {};
    const type = kind === "job" ? form.querySelector('[name="schedule_type"]').value : "";
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (input.name.startsWith("param-") || input.disabled) continue;
      if (kind === "job" && !shown(input, type)) continue;
      const v = valueOf(input);
      if (v === undefined || (v === "" && (kind === "token" || input.name === "job_id"))) continue;
      body[input.name] = v;
    }
    if (kind === "job") body.params = params(form);
    return body;
  }

  // ---- wiring -------------------------------------------------------------------------------------
  function onSubmit(form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const [method, url] = form.dataset.api.split(" ");
      let body;
      try { body = collect(form); } catch (e) { showError(form, e); return; }
      const button = form.querySelector('[type="submit"]');
      if (button) button.disabled = true;
      const r = await api(method, url, body);
      if (button) button.disabled = false;
      if (!r.ok) { showError(form, errorOf(r)); return; }
      if (form.dataset.then === "show-token") {
        const box = document.querySelector(".token-shown");
        box.querySelector("[data-token-value]").textContent = r.data.token;
        box.hidden = false;
        return;
      }
      then(form.dataset.then, r.data);
    });
  }

  function onAction(button) {
    button.addEventListener("click", async () => {
      if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
      const [method, url] = button.dataset.action.split(" ");
      const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
      button.disabled = true;
      const r = await api(method, url, body);
      button.disabled = false;
      if (!r.ok) { flash(errorOf(r).message, true); return; }
      then(button.dataset.then, r.data);
    });
  }

  function onActionSelect(select) {
    select.addEventListener("change", async () => {
      const [method, url] = select.dataset.actionSelect.split(" ");
      const r = await api(method, url, { [select.dataset.field]: select.value });
      if (!r.ok) { flash(errorOf(r).message, true); return; }
      then(select.dataset.then, r.data);
    });
  }

  function localTimes(root) {
    const fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    root.querySelectorAll("time[datetime]").forEach((t) => {
      const d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = fmt.format(d);
    });
    const hour = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
    const day = new Intl.DateTimeFormat(undefined, { month: "2-digit", day: "2-digit" });
    root.querySelectorAll("[data-at]").forEach((t) => {
      const d = new Date(t.dataset.at);
      if (!isNaN(d)) t.textContent = (t.dataset.fmt === "day" ? day : hour).format(d);
    });
    root.querySelectorAll("[data-width]").forEach((m) => { m.style.width = Math.min(100, Number(m.dataset.width)) + "%"; });
  }

  function enhance(root) {
    localTimes(root);
    root.querySelectorAll("form[data-api]").forEach(onSubmit);
    root.querySelectorAll("[data-action]").forEach(onAction);
    root.querySelectorAll("[data-action-select]").forEach(onActionSelect);
    root.querySelectorAll("[data-logout]").forEach((b) => b.addEventListener("click", async () => {
      await api("POST", "/api/auth/logout");
      location.href = "/login";
    }));
  }

  // Pages that refresh themselves fetch their own URL and swap the main content, unless the user is
  // in the middle of something there.
  function autoRefresh(main) {
    const secs = Number(main.dataset.refresh);
    if (!secs) return;
    setInterval(async () => {
      if (document.hidden || main.contains(document.activeElement) && document.activeElement !== main ||
        main.querySelector("details[open]")) return;
      const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok || res.redirected) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById("main");
      if (!fresh) return;
      main.innerHTML = fresh.innerHTML;
      enhance(main);
      main.dispatchEvent(new CustomEvent("refreshed"));
    }, secs * 1000);
  }

  // ---- the job form -------------------------------------------------------------------------------
  function jobForm(form) {
    const type = form.querySelector('[name="schedule_type"]');
    const start = form.querySelector('[name="start_time"]');
    if (start && start.dataset.utc) start.value = isoToLocal(start.dataset.utc);
    const sync = () => form.querySelectorAll("[data-show]").forEach((f) => { f.hidden = !shown(f, type.value); });
    type.addEventListener("change", sync);
    sync();
    const list = form.querySelector("[data-preview-list]");
    const err = form.querySelector("[data-preview-error]");
    const zone = form.querySelector("[data-preview-zone]");
    let timer = 0;
    let seq = 0;
    const preview = async () => {
      const q = new URLSearchParams();
      q.set("schedule_type", type.value);
      for (const n of ["cron_expression", "interval", "time_zone"]) {
        const el = form.querySelector(`[name="${n}"]`);
        if (el && shown(el, type.value)) q.set(n, el.value);
      }
      if (start && shown(start, type.value) && start.value) q.set("start_time", localToIso(start.value));
      const mine = ++seq;
      const r = await api("GET", "/ui/preview?" + q.toString());
      if (mine !== seq) return;
      list.textContent = "";
      form.querySelectorAll('[data-preview] [aria-invalid]').forEach((e) => e.removeAttribute("aria-invalid"));
      form.querySelectorAll('[data-preview] .field-error').forEach((e) => { e.hidden = true; });
      if (!r.ok) {
        err.hidden = true;
        zone.textContent = "";
        showError(form.querySelector("[data-preview]"), errorOf(r));
        return;
      }
      err.hidden = true;
      zone.textContent = "in " + r.data.time_zone;
      if (!r.data.fires.length) {
        const li = document.createElement("li");
        li.textContent = type.value === "manual" ? "Runs only when started by hand or the API." : "No more fires.";
        list.appendChild(li);
      }
      for (const f of r.data.fires) {
        const li = document.createElement("li");
        li.textContent = f.local;
        li.title = f.utc;
        list.appendChild(li);
      }
    };
    form.querySelector("[data-preview]").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(preview, 250); });
    form.querySelector("[data-preview]").addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(preview, 50); });
    preview();
    const rows = form.querySelector("[data-params]");
    const tpl = form.querySelector("[data-param-template]");
    form.querySelector("[data-add-param]").addEventListener("click", () => {
      rows.appendChild(tpl.content.cloneNode(true));
      rows.lastElementChild.querySelector("input").focus();
    });
    rows.addEventListener("click", (ev) => {
      if (ev.target.matches("[data-remove-row]")) ev.target.closest(".param-row").remove();
    });
    rows.addEventListener("change", (ev) => {
      if (ev.target.name === "param-secret") {
        ev.target.closest(".param-row").querySelector('[name="param-value"]').type = ev.target.checked ? "password" : "text";
      }
    });
  }

  // ---- live output --------------------------------------------------------------------------------
  function liveLog(pre) {
    const state = document.querySelector("[data-log-state]");
    const badge = document.querySelector("[data-task-status]");
    const es = new EventSource(pre.dataset.logStream);
    const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    es.addEventListener("chunk", (ev) => {
      const c = JSON.parse(ev.data);
      const stick = atBottom();
      if (c.skipped > 0) {
        const s = document.createElement("span");
        s.className = "skipped";
        s.textContent = `[${c.skipped} bytes not shown]`;
        pre.appendChild(s);
      }
      pre.appendChild(document.createTextNode(c.text));
      if (stick) pre.scrollTop = pre.scrollHeight;
    });
    es.addEventListener("end", (ev) => {
      es.close();
      const e = JSON.parse(ev.data);
      pre.dataset.ended = e.status;
      if (state) state.textContent = `The task ended: ${e.status}. Reload for the recorded attempt.`;
      if (badge) { badge.textContent = e.status; badge.className = "badge big " + (e.status === "succeeded" ? "ok" : ["failed", "timed_out", "lost"].includes(e.status) ? "bad" : "off"); }
    });
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED && state) state.textContent = "The live view stopped; reload to try again.";
    });
  }

  // ---- login --------------------------------------------------------------------------------------
  function login(form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const body = { name: form.querySelector("#name").value, password: form.querySelector("#password").value, session: "cookie" };
      const r = await api("POST", "/api/auth/login", body);
      if (!r.ok) { showError(form, errorOf(r)); return; }
      location.href = form.dataset.next || "/";
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    const main = document.getElementById("main");
    if (main) autoRefresh(main);
    const jf = document.getElementById("job-form");
    if (jf) jobForm(jf);
    document.querySelectorAll("[data-log-stream]").forEach(liveLog);
    const lf = document.querySelector("form[data-login]");
    if (lf) login(lf);
  });
})();
