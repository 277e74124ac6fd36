// The previews page: filter and search without reloading, refresh every 30 s and on demand.
// Rows are built with the DOM (textContent), never from HTML strings.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const rows = () => Array.from(document.querySelectorAll("#previews tbody tr"));
  function apply() {
    const app = $("filter-app").value;
    const state = $("filter-state").value;
    const q = $("search").value.trim().toLowerCase();
    let shown = 0;
    for (const tr of rows()) {
      const ok = (!app || tr.dataset.app === app) &&
        (!state || tr.dataset.state === state) &&
        (!q || tr.textContent.toLowerCase().includes(q));
      tr.hidden = !ok;
      if (ok) shown++;
    }
    $("empty").hidden = shown > 0;
  }
  // Each cell names its column, for the stacked rows at phone width.
  function cell(tr, label, build) {
    const td = document.createElement("td");
    td.dataset.label = label;
    build(td);
    tr.appendChild(td);
  }
  function link(parent, href, text, code) {
    const el = href ? document.createElement("a") : document.createElement("span");
    if (href) el.href = href;
    if (code) {
      const c = document.createElement("code");
      c.textContent = text;
      el.appendChild(c);
    } else {
      el.textContent = text;
    }
    parent.appendChild(el);
  }
  function time(parent, value, shown) {
    if (!value) return;
    const t = document.createElement("time");
    t.dateTime = value;
    t.title = value;
    t.textContent = shown || value;
    parent.appendChild(t);
  }
  function renderQueue(queue) {
    const body = document.querySelector("#queue tbody");
    const fresh = document.createElement("tbody");
    for (const q of queue) {
      const tr = document.createElement("tr");
      cell(tr, "Place", (td) => { td.textContent = String(q.position); });
      cell(tr, "Application", (td) => { td.textContent = q.application || ""; });
      cell(tr, "Change", (td) => { if (q.change) link(td, q.change_url, "#" + q.change, false); });
      cell(tr, "Branch", (td) => link(td, null, q.branch, true));
      cell(tr, "Author", (td) => { td.textContent = q.author || ""; });
      cell(tr, "Cluster asked for", (td) => { td.textContent = q.cluster || "any"; });
      cell(tr, "Waiting since", (td) => time(td, q.queued_at, q.queued_at));
      fresh.appendChild(tr);
    }
    body.replaceWith(fresh);
    $("queue-section").hidden = queue.length === 0;
  }
  function render(view) {
    const body = document.querySelector("#previews tbody");
    const fresh = document.createElement("tbody");
    for (const r of view.rows) {
      const tr = document.createElement("tr");
      tr.dataset.app = r.application || "";
      tr.dataset.state = r.state;
      cell(tr, "Application", (td) => { td.textContent = r.application || ""; });
      if ($("previews").dataset.clustered === "true") {
        cell(tr, "Cluster", (td) => { td.textContent = r.cluster || ""; });
      }
      cell(tr, "Change", (td) => {
        if (r.change) link(td, r.change_url, "#" + r.change, false);
        if (r.title) {
          const s = document.createElement("span");
          s.className = "title";
          s.textContent = " " + r.title;
          td.appendChild(s);
        }
      });
      cell(tr, "Branch", (td) => link(td, null, r.branch, true));
      cell(tr, "Author", (td) => { td.textContent = r.author || ""; });
      cell(tr, "Commit", (td) => { if (r.short_sha) link(td, r.commit_url, r.short_sha, true); });
      cell(tr, "Deployed", (td) => time(td, r.deployed_at, r.deployed));
      cell(tr, "Expires", (td) => time(td, r.expires_at, r.expires));
      cell(tr, "State", (td) => {
        const s = document.createElement("span");
        s.className = "state state-" + r.state;
        s.textContent = r.state;
        td.appendChild(s);
        if (r.message) {
          const m = document.createElement("span");
          m.className = "message";
          m.textContent = r.message;
          td.appendChild(m);
        }
      });
      cell(tr, "Preview", (td) => {
        if (!r.preview_url) return;
        link(td, r.preview_url, r.preview_url.replace(/^https?:\/\//, ""), false);
        const a = td.querySelector("a");
        a.className = "preview";
        a.title = r.preview_url;
      });
      const table = $("previews");
      if (table.dataset.canAct === "true") {
        cell(tr, "Actions", (td) => {
          td.className = "actions";
          for (const verb of r.actions) {
            const f = document.createElement("form");
            f.method = "post";
            f.action = "/actions/" + verb;
            if (verb === "destroy") f.dataset.confirm = "Destroy the preview " + r.slug + "?";
            for (const [name, value] of [["file", r.file], ["csrf", table.dataset.csrf]]) {
              const i = document.createElement("input");
              i.type = "hidden";
              i.name = name;
              i.value = value;
              f.appendChild(i);
            }
            const b = document.createElement("button");
            b.type = "submit";
            b.textContent = verb;
            b.setAttribute("aria-label", verb + " " + r.slug);
            f.appendChild(b);
            td.appendChild(f);
          }
          for (const note of r.notes) {
            const n = document.createElement("span");
            n.className = "note";
            n.textContent = note;
            td.appendChild(n);
          }
        });
      }
      fresh.appendChild(tr);
    }
    body.replaceWith(fresh);
    renderQueue(view.queue || []);
    if (view.read_at) $("read-at").textContent = view.read_at;
    for (const [k, v] of Object.entries(view.totals)) {
      const el = document.querySelector('[data-total="' + k + '"]');
      if (el) el.textContent = String(v);
    }
    apply();
  }
  async function refresh() {
    try {
      const res = await fetch("/api/previews", { credentials: "same-origin" });
      if (res.ok) render(await res.json());
    } catch (e) {
      // Offline for a moment: the next refresh tries again.
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["filter-app", "filter-state"]) $(id).addEventListener("change", apply);
    $("search").addEventListener("input", apply);
    $("refresh").addEventListener("click", refresh);
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    // Destroy asks first.
    document.addEventListener("submit", (e) => {
      const msg = e.target.dataset && e.target.dataset.confirm;
      if (msg && !window.confirm(msg)) e.preventDefault();
    });
    setInterval(refresh, 30000);
    apply();
  });
})();
