// Infusafe live updates: the only script on the site, and only an enhancement. Every page works without it
// (plain links and forms); with it, a page that names a server-sent event stream refreshes its live parts
// when the stream says something changed, so an alarm appears on screen within a second or two.
//
// How: <body data-stream="/api/..."> names the stream. Elements with an id and a data-live attribute are the
// parts that may change. On an event, the script fetches the current page again and swaps in those parts.
// Alarm events refresh at once; telemetry refreshes at most every few seconds. Focus moves to a newly
// raised alarm so a screen reader user hears it, and a status line says whether live updates are on.
//
// The nurse dashboard (an element with data-dashboard) is a clinic of up to thousands of patients, so it never
// fetches the whole page: an event about patient P fetches the attention section (/nurse/attention) when P may
// enter, leave or change in it, and P's row of the list (/nurse/rows/P) when that row is on this page.
// Telemetry only fetches P's row, and only when the pump's state changed (the row shows nothing finer).
(function () {
  'use strict';
  var body = document.body;
  var url = body && body.getAttribute('data-stream');
  if (!url || !window.EventSource || !window.fetch || !window.DOMParser) return;

  var status = document.getElementById('live-status');
  var inFlight = false;
  var again = false;
  var lastRefresh = 0;
  var timer = null;
  var TELEMETRY_MIN_MS = 3000;

  function say(text) { if (status) status.textContent = text; }

  function alarmIds(root) {
    var ids = [];
    var nodes = root.querySelectorAll('[data-alarm-id]');
    for (var i = 0; i < nodes.length; i++) ids.push(nodes[i].getAttribute('data-alarm-id'));
    return ids;
  }

  // Someone typing a note or choosing options must not lose it to a refresh: skip parts with focus or edits.
  function busy(el) {
    var active = document.activeElement;
    if (active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
    return el.hasAttribute('data-dirty');
  }

  function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    lastRefresh = Date.now();
    var before = alarmIds(document);
    fetch(location.href, { credentials: 'same-origin', headers: { 'X-Live-Refresh': '1' } })
      .then(function (r) {
        if (r.redirected && /\/login/.test(r.url)) { location.href = r.url; throw new Error('signed out'); }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var parts = document.querySelectorAll('[data-live][id]');
        for (var i = 0; i < parts.length; i++) {
          var fresh = doc.getElementById(parts[i].id);
          if (fresh && !busy(parts[i]) && fresh.innerHTML !== parts[i].innerHTML) {
            parts[i].innerHTML = fresh.innerHTML;
            parts[i].className = fresh.className;
          }
        }
        var after = alarmIds(document);
        for (var j = 0; j < after.length; j++) {
          if (before.indexOf(after[j]) < 0) {
            var target = document.querySelector('[data-alarm-id="' + after[j] + '"] [data-focus]');
            if (target) { target.setAttribute('tabindex', '-1'); target.focus(); }
            document.title = '\u26a0 ' + document.title.replace(/^\u26a0 /, '');
            break;
          }
        }
        if (after.length === 0) document.title = document.title.replace(/^\u26a0 /, '');
        say('Live: updated ' + new Date().toLocaleTimeString());
      })
      .catch(function () { say('Live updates paused. Pull down or press Reload to see the latest.'); })
      .then(function () {
        inFlight = false;
        if (again) { again = false; refresh(); }
      });
  }

  function schedule(urgent) {
    if (urgent) { clearTimeout(timer); timer = null; refresh(); return; }
    if (timer) return;
    var wait = Math.max(0, TELEMETRY_MIN_MS - (Date.now() - lastRefresh));
    timer = setTimeout(function () { timer = null; refresh(); }, wait);
  }

  // Form fields in live parts mark themselves edited so a refresh never overwrites what someone typed.
  document.addEventListener('input', function (e) {
    var part = e.target.closest && e.target.closest('[data-live]');
    if (part) part.setAttribute('data-dirty', '');
  });

  var dashboard = document.querySelector('[data-dashboard]');
  if (dashboard) { followDashboard(); return; }

  var source = new EventSource(url, { withCredentials: true });
  source.onopen = function () { say('Live updates on.'); };
  source.onerror = function () { say('Reconnecting live updates\u2026'); };
  // The server's event names (crates/server/src/hub.rs). A `snapshot` opens every stream: the first one
  // matches the page just rendered; a later one means the stream reconnected, so the page may be stale.
  var snapshots = 0;
  source.addEventListener('snapshot', function () { if (snapshots++ > 0) schedule(true); });
  source.onmessage = function () { schedule(true); };
  ['alarm', 'alarm_cleared', 'acknowledged', 'silenced', 'escalation', 'link', 'lagged', 'practice', 'plan',
    'checklist', 'note'].forEach(function (name) {
    source.addEventListener(name, function () { schedule(true); });
  });
  source.addEventListener('telemetry', function () { schedule(false); });
  window.addEventListener('pagehide', function () { source.close(); });

  // The dashboard: small fragments, one patient at a time.
  function followDashboard() {
    var rowsWanted = {};
    var attentionWanted = false;
    var running = false;

    function get(path) {
      return fetch(path, { credentials: 'same-origin', headers: { 'X-Live-Refresh': '1' } }).then(function (r) {
        if (r.redirected && /\/login/.test(r.url)) { location.href = r.url; throw new Error('signed out'); }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text().then(function (html) { return new DOMParser().parseFromString(html, 'text/html'); });
      });
    }

    // Someone is in a field here, or left a note unsent: keep it (it is swapped once the field is empty).
    function typing(el) {
      var active = document.activeElement;
      if (active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
      var fields = el.querySelectorAll('input[type=text], textarea');
      for (var i = 0; i < fields.length; i++) if (fields[i].value) return true;
      return false;
    }

    // Swap `fresh` in for the element with the same id, unless someone is typing in it (then try again later).
    function swap(id, fresh) {
      var old = document.getElementById(id);
      if (!old || !fresh) return true;
      if (typing(old)) return false;
      if (old.outerHTML !== fresh.outerHTML) old.replaceWith(document.importNode(fresh, true));
      return true;
    }

    function announceNew(before) {
      var after = alarmIds(document);
      for (var j = 0; j < after.length; j++) {
        if (before.indexOf(after[j]) < 0) {
          var target = document.querySelector('[data-alarm-id="' + after[j] + '"] [data-focus]');
          if (target && !(document.activeElement && document.activeElement.closest('form'))) { target.setAttribute('tabindex', '-1'); target.focus(); }
          document.title = '\u26a0 ' + document.title.replace(/^\u26a0 /, '');
          break;
        }
      }
      if (after.length === 0) document.title = document.title.replace(/^\u26a0 /, '');
    }

    function work() {
      if (running) return;
      var ids = Object.keys(rowsWanted);
      if (!attentionWanted && ids.length === 0) return;
      running = true;
      var before = alarmIds(document);
      var jobs = [];
      if (attentionWanted) {
        attentionWanted = false;
        jobs.push(get('/nurse/attention').then(function (doc) {
          var count = document.getElementById('attention-count');
          var freshCount = doc.getElementById('attention-count');
          if (count && freshCount && count.textContent !== freshCount.textContent) count.textContent = freshCount.textContent;
          if (!swap('attention', doc.getElementById('attention'))) attentionWanted = true;
        }));
      }
      ids.forEach(function (id) {
        delete rowsWanted[id];
        jobs.push(get('/nurse/rows/' + encodeURIComponent(id)).then(function (doc) {
          if (!swap('row-' + id, doc.getElementById('row-' + id))) rowsWanted[id] = true;
        }));
      });
      Promise.all(jobs)
        .then(function () { announceNew(before); say('Live: updated ' + new Date().toLocaleTimeString()); })
        .catch(function () { say('Live updates paused. Pull down or press Reload to see the latest.'); })
        .then(function () {
          running = false;
          // Anything that arrived meanwhile (or waited for someone to finish typing) goes next, a little later.
          if (attentionWanted || Object.keys(rowsWanted).length) setTimeout(work, 1000);
        });
    }

    function patientOf(e) {
      try { return JSON.parse(e.data); } catch (err) { return null; }
    }

    // Everything on screen may be stale (a reconnect, or the server's buffer overflowed for this stream).
    function everything() {
      attentionWanted = true;
      var rows = document.querySelectorAll('#patient-list > li[data-patient]');
      for (var i = 0; i < rows.length; i++) rowsWanted[rows[i].getAttribute('data-patient')] = true;
      work();
    }

    function changed(e) {
      var m = patientOf(e);
      if (!m || !m.patient_id) { everything(); return; }
      attentionWanted = true;
      if (document.getElementById('row-' + m.patient_id)) rowsWanted[m.patient_id] = true;
      work();
    }

    function telemetry(e) {
      var m = patientOf(e);
      if (!m || !m.patient_id || !m.data) return;
      var now = 'live:' + m.data.state;
      var row = document.getElementById('row-' + m.patient_id);
      var top = document.getElementById('att-' + m.patient_id);
      if (row && row.getAttribute('data-state') !== now) rowsWanted[m.patient_id] = true;
      if (top && top.getAttribute('data-state') !== now) attentionWanted = true;
      work();
    }

    var opened = 0;
    var source = new EventSource(url, { withCredentials: true });
    source.onopen = function () {
      say('Live updates on.');
      if (opened++ > 0) everything();
    };
    source.onerror = function () { say('Reconnecting live updates\u2026'); };
    source.onmessage = everything;
    ['alarm', 'alarm_cleared', 'acknowledged', 'silenced', 'escalation', 'link', 'practice', 'plan',
      'checklist', 'note', 'snapshot'].forEach(function (name) { source.addEventListener(name, changed); });
    source.addEventListener('lagged', everything);
    source.addEventListener('telemetry', telemetry);
    window.addEventListener('pagehide', function () { source.close(); });
  }
})();
