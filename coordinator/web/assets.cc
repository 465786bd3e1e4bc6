#include "coordinator/web/assets.h"

#include "absl/strings/str_cat.h"

namespace pcsweep::coordinator::web {
namespace {

constexpr char kCss[] = R"css(
:root { --fg: #1d2329; --muted: #6a737d; --line: #d8dee4; --bg: #ffffff; --head: #f4f6f8;
  --run: #0969da; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --idle: #6e7781; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em;
  border-bottom: 1px solid var(--line); background: var(--head); }
header .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header nav a { margin-right: 1em; }
#live-status { margin-left: auto; font-size: 12px; }
main { padding: 1em 1.2em 3em; max-width: 1600px; }
h1 { font-size: 1.5em; margin: .2em 0 .6em; }
h1 small, h2 small { color: var(--muted); font-weight: 400; font-size: .65em; }
h2 { font-size: 1.2em; margin: 1.4em 0 .5em; }
h3 { font-size: 1.05em; margin: 1em 0 .3em; }
a { color: var(--run); }
.muted { color: var(--muted); }
.error { color: var(--bad); font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; }
table.grid, table.results { font-size: 13px; }
th, td { padding: .25em .6em; border-bottom: 1px solid var(--line); white-space: nowrap;
  text-align: left; vertical-align: top; }
th { background: var(--head); position: sticky; top: 0; }
td.num, th.right, td.right { text-align: right; font-variant-numeric: tabular-nums; }
th.center, td.center { text-align: center; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.zero { color: #b0b7be; }
td.collapsed { color: var(--bad); font-weight: 600; }
td.bar { min-width: 12em; }
progress { width: 8em; height: .8em; vertical-align: middle; }
.summary p { margin: .3em 0; }
.summary progress { width: 16em; }
ul.counts { list-style: none; padding: 0; margin: .4em 0; display: flex; flex-wrap: wrap; gap: .4em; }
.chip { display: inline-block; padding: .15em .6em; border: 1px solid var(--line);
  border-radius: 1em; text-decoration: none; color: var(--fg); }
.chip.zero { color: var(--muted); }
.badge { display: inline-block; padding: 0 .5em; border-radius: .3em; font-size: 12px;
  color: #fff; background: var(--idle); }
.state-running, .state-leased, .state-active, .state-alive { --c: var(--run); }
.state-succeeded, .state-reused, .state-finished { --c: var(--ok); }
.state-failed, .state-finished-with-failures, .state-lost { --c: var(--bad); }
.state-cancelled { --c: var(--warn); }
.state-pending { --c: var(--idle); }
.badge[class*="state-"] { background: var(--c, var(--idle)); }
.chip[class*="state-"] b { color: var(--c, var(--fg)); }
form.filter { margin: .6em 0; display: flex; gap: .8em; align-items: center; flex-wrap: wrap; }
select, button { font: inherit; padding: .1em .4em; }
details.failure { margin: .3em 0; border-left: 3px solid var(--bad); padding-left: .6em; }
details.failure pre { background: #f6f8fa; padding: .6em; overflow-x: auto; max-height: 24em;
  font-size: 12px; white-space: pre-wrap; }
.table-title { font-weight: 600; margin: .3em 0; }
ul.notes { color: var(--muted); font-size: 12px; padding-left: 1.2em; max-width: 110em; }
img.figure { max-width: 100%; border: 1px solid var(--line); background: #fff; }
.compare { display: grid; grid-template-columns: 1fr 1fr; gap: 1.2em; }
.compare .side { min-width: 0; }
@media (max-width: 1000px) { .compare { grid-template-columns: 1fr; } }
)css";

constexpr char kJs[] = R"js('use strict';
// Polls the page's live parts and reloads its result fragments when results change.
(function () {
  const live = document.getElementById('live');
  const status = document.getElementById('live-status');
  const pollMs = Number(document.body.dataset.pollMs) || 2000;
  let version = null;

  function withParam(url, key, value) {
    return url + (url.indexOf('?') < 0 ? '?' : '&') + key + '=' + encodeURIComponent(value);
  }

  async function loadFragment(el) {
    try {
      const r = await fetch(withParam(el.dataset.fragmentUrl, 'v', version || ''),
                            {cache: 'no-store', credentials: 'same-origin'});
      el.innerHTML = await r.text();
    } catch (e) {
      el.innerHTML = '<p class="muted">could not load: ' + String(e).replace(/</g, '&lt;') + '</p>';
    }
  }

  function loadFragments() {
    document.querySelectorAll('[data-fragment-url]').forEach(loadFragment);
  }

  // Replaces each [data-live] element of the page with the answer's element of the same id,
  // keeping open <details> open.
  function apply(html) {
    const open = new Set();
    document.querySelectorAll('details[open][id]').forEach((d) => open.add(d.id));
    const template = document.createElement('template');
    template.innerHTML = html;
    template.content.querySelectorAll('[data-live][id]').forEach((fresh) => {
      const old = document.getElementById(fresh.id);
      if (old) old.replaceWith(fresh);
    });
    open.forEach((id) => { const d = document.getElementById(id); if (d) d.open = true; });
  }

  async function poll() {
    let finished = false;
    try {
      const r = await fetch(live.dataset.liveUrl, {cache: 'no-store', credentials: 'same-origin'});
      if (!r.ok) throw new Error('HTTP ' + r.status);
      apply(await r.text());
      finished = r.headers.get('X-Pcsweep-Finished') === '1';
      const v = r.headers.get('X-Pcsweep-Version');
      if (v !== null && v !== version) { version = v; loadFragments(); }
      window.pcsweepUpdates = (window.pcsweepUpdates || 0) + 1;
      status.textContent = (finished ? 'finished · ' : 'live · ') + 'updated ' +
                           new Date().toLocaleTimeString();
    } catch (e) {
      status.textContent = 'connection lost (' + e.message + '), retrying';
    }
    setTimeout(poll, finished ? pollMs * 5 : pollMs);
  }

  if (live && live.dataset.liveUrl) {
    poll();
  } else {
    loadFragments();
  }
})();
)js";

}  // namespace

absl::StatusOr<StaticAsset> FindAsset(absl::string_view name) {
  if (name == "app.css") return StaticAsset{"text/css; charset=utf-8", kCss};
  if (name == "app.js") return StaticAsset{"text/javascript; charset=utf-8", kJs};
  return absl::NotFoundError(absl::StrCat("no static file '", name, "'"));
}

}  // namespace pcsweep::coordinator::web
