// The incident room's behaviour (SPEC §12), served by drctl as a file: no inline script, no
// framework. The run page follows its run's events (one per journal entry) and updates its
// steps and timeline in place; the runs page follows the runs list; a signed decision is
// uploaded from the run page; the RTO clock ticks. Every value is set as text, never as HTML.
(function () {
  'use strict';

  function followRun(timeline) {
    var run = timeline.dataset.run;
    var url = '/runs/' + encodeURIComponent(run) + '/events?from=' + timeline.dataset.next;
    var source = new EventSource(url);
    source.onmessage = function (message) {
      var item = JSON.parse(message.data);
      item.steps.forEach(function (change) {
        var id = change[0], status = change[1];
        var node = document.querySelector('g.step[data-step="' + CSS.escape(id) + '"]');
        if (node) {
          node.setAttribute('data-status', status);
          var sub = node.querySelector('text.sub');
          if (sub) { sub.textContent = status; }
        }
        var approval = document.querySelector('.approval[data-step="' + CSS.escape(id) + '"]');
        if (approval && status !== 'awaiting_approval') { approval.remove(); }
      });
      var status = document.getElementById('run-status');
      if (status && item.status) {
        status.textContent = item.status;
        status.dataset.status = item.status;
      }
      var projected = document.getElementById('rto-projection');
      if (projected && item.projection) {
        if (item.projection.text) {
          projected.textContent = item.projection.text;
          projected.dataset.atRisk = item.projection.at_risk;
        } else {
          // The clock stopped: the service recovered, or the run ended.
          projected.remove();
          if (stopTicking) { stopTicking(); }
        }
      }
      if (item.line) {
        var li = document.createElement('li');
        li.dataset.seq = item.seq;
        var time = document.createElement('time');
        time.textContent = item.at;
        li.append(time, ' ' + item.line);
        timeline.append(li);
      }
      timeline.dataset.next = item.seq + 1;
    };
    source.addEventListener('failed', function (message) {
      var p = document.createElement('p');
      p.className = 'refusal';
      p.textContent = 'The page no longer follows the run: ' + message.data;
      timeline.before(p);
      source.close();
    });
  }

  function cell(text) {
    var td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function followRuns(table) {
    var body = table.tBodies[0];
    var source = new EventSource('/events');
    source.addEventListener('runs', function (message) {
      JSON.parse(message.data).forEach(function (row) {
        var tr = body.querySelector('tr[data-run="' + CSS.escape(row.run_id) + '"]');
        if (!tr) {
          tr = document.createElement('tr');
          tr.dataset.run = row.run_id;
          var link = document.createElement('a');
          link.href = '/runs/' + encodeURIComponent(row.run_id);
          link.textContent = row.run_id;
          var first = document.createElement('td');
          first.append(link);
          var status = cell('');
          status.className = 'status';
          var rto = cell('');
          rto.className = 'rto';
          var driver = cell('');
          driver.className = 'driver';
          tr.append(first, cell(row.workflow), cell(row.mode), status,
            cell(row.started_at), rto, driver);
          body.append(tr);
        }
        var shown = tr.querySelector('td.status');
        shown.textContent = row.status;
        shown.dataset.status = row.status;
        tr.querySelector('td.rto').textContent = row.rto;
        tr.querySelector('td.driver').textContent = row.driver;
      });
    });
  }

  function submitVote(form) {
    var answer = document.getElementById('vote-answer');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var file = document.getElementById('vote-file').files[0];
      if (!file) { answer.textContent = 'Choose the file drctl approve --sign-only wrote.'; return; }
      file.text().then(function (text) {
        return fetch(form.action, {
          method: 'POST', body: text, credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json' }
        });
      }).then(function (response) {
        return response.text().then(function (text) {
          answer.textContent = text;
          answer.dataset.ok = response.ok ? 'yes' : 'no';
        });
      }).catch(function (error) {
        answer.textContent = 'The vote was not sent: ' + error;
        answer.dataset.ok = 'no';
      });
    });
  }

  var stopTicking = null;

  function tick(clock) {
    var since = Date.parse(clock.dataset.since);
    var shown = document.createElement('p');
    shown.className = 'ticking';
    clock.append(shown);
    function show() {
      var s = Math.max(0, Math.floor((Date.now() - since) / 1000));
      shown.textContent = Math.floor(s / 3600) + 'h ' + Math.floor(s / 60) % 60 + 'm ' + s % 60 + 's elapsed';
    }
    show();
    var ticking = setInterval(show, 1000);
    stopTicking = function () { clearInterval(ticking); shown.remove(); };
  }

  var timeline = document.getElementById('timeline');
  if (timeline) { followRun(timeline); }
  var runs = document.querySelector('[data-live="runs"]');
  if (runs) { followRuns(runs); }
  var vote = document.getElementById('vote');
  if (vote) { submitVote(vote); }
  var clock = document.querySelector('#rto[data-since]');
  if (clock) { tick(clock); }
}());
