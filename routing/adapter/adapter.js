// The agent adapter: follows the agent's event stream, hands each event to
// the parent window (the CRM) with postMessage, and lets the agent answer
// offers and work pull-mode Lists through the routing API.
'use strict';
(function () {
  const cfg = JSON.parse(document.getElementById('adapter-config').textContent);
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // Push mode: conversation id -> <li>. While the offers are being
  // loaded, offerLoad notes the offers that ended and those that came
  // meanwhile, so the answer, older than both, undoes neither.
  const offers = new Map();
  let offerLoad = null;
  let offerReload = false;

  // Pull mode: list id -> {ul, seq, ready, pending, requests: Map(id ->
  // {state, agents: Set, li})}. seq is the List's change the copy
  // reflects; events that come while the copy is (re)loading wait in
  // pending and are applied after it.
  const lists = new Map();

  let lastEventID = '';
  let connectedOnce = false;
  let source = null;
  let retryMs = 1000;

  // The contact center's call adapter posts the call events and its chat
  // adapter the chat events; everything else both post. A CRM that frames
  // one of each so hears of each session once.
  const onlyIn = {
    New_Call: 'call', End_Call: 'call',
    New_Chat: 'chat', Active_Chat: 'chat', Chat_Inbound_Message: 'chat',
    Chat_Outbound_Message: 'chat', End_Chat: 'chat', Dismissed_Chat: 'chat',
  };

  function forward(ev) {
    // The shape the CRM's listener parses: {"type": ..., "data": {...}}.
    if (window.parent === window) return;
    const only = Object.prototype.hasOwnProperty.call(onlyIn, ev.type) ? onlyIn[ev.type] : '';
    if (only && only !== cfg.type) return;
    try {
      window.parent.postMessage(JSON.stringify(ev), cfg.targetOrigin);
    } catch (e) {
      showError('cannot post to the CRM page: ' + e.message);
    }
  }

  function showError(msg) {
    const el = $('error');
    el.textContent = msg;
    el.hidden = !msg;
  }

  function setStatus(text, cls) {
    const el = $('status');
    el.textContent = text;
    el.className = 'status ' + cls;
  }

  // api calls the routing API with the agent's token. A failed call
  // rejects with an Error carrying the HTTP status and the API's code.
  function api(method, path, body) {
    const opts = { method, headers: { 'Authorization': 'Bearer ' + cfg.token }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(cfg.apiPath + path, opts).then(async (r) => {
      const j = await r.json().catch(() => ({}));
      if (!r.ok) {
        const err = new Error((j.error && j.error.message) || (r.status + ' ' + r.statusText));
        err.status = r.status;
        err.code = j.error && j.error.code;
        throw err;
      }
      return j;
    });
  }

  function button(label, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.className = cls;
    b.addEventListener('click', () => {
      b.disabled = true;
      onClick().then(() => showError(''), (e) => { b.disabled = false; showError(e.message); });
    });
    return b;
  }

  function placeholder(container) {
    const empty = container.querySelector(':scope > .empty');
    const items = container.querySelectorAll(':scope > :not(.empty)').length;
    if (empty) empty.hidden = items > 0;
  }

  // ----------------------------------------------------------------
  // push mode: offers

  function addOffer(d) {
    const conv = d.conversation;
    if (!conv || offers.has(conv)) return;
    const li = document.createElement('li');
    li.className = 'offer';
    li.dataset.conversation = conv;
    const what = (d.transfer ? 'Transfer' : 'Offer') + ': ' + conv +
      (d.queue ? ' (' + d.queue + ')' : '') + (d.channel ? ' ' + d.channel : '') +
      (d.transfer && d.from_agent ? ' from ' + d.from_agent : '');
    li.append(document.createTextNode(what));
    const path = '/conversations/' + enc(conv);
    li.append(button('Accept', 'accept', () =>
      api('POST', path + '/accept', { agent: cfg.agent }).then(() => removeOffer(conv))));
    li.append(button('Decline', 'decline', () =>
      api('POST', path + '/decline', { agent: cfg.agent }).then(() => removeOffer(conv))));
    $('offers').append(li);
    offers.set(conv, li);
    placeholder($('offers'));
  }

  function removeOffer(conv) {
    if (offerLoad) {
      offerLoad.ended.add(conv);
      offerLoad.added.delete(conv);
    }
    const li = offers.get(conv);
    if (li) li.remove();
    offers.delete(conv);
    placeholder($('offers'));
  }

  // loadOffers replaces the shown offers with the engine's. An agent the
  // engine does not know yet simply has none.
  function loadOffers() {
    if (offerLoad) {
      offerReload = true;
      return;
    }
    const load = offerLoad = { ended: new Set(), added: new Set() };
    api('GET', '/agents/' + enc(cfg.agent)).then((a) => {
      const open = new Set((a.offers || []).map((o) => o.conversation));
      for (const conv of [...offers.keys()]) {
        if (!open.has(conv) && !load.added.has(conv)) removeOffer(conv);
      }
      (a.offers || []).forEach((o) => { if (!load.ended.has(o.conversation)) addOffer(o); });
    }, (e) => {
      if (e.status !== 404) showError(e.message);
    }).finally(() => {
      offerLoad = null;
      if (offerReload) {
        offerReload = false;
        loadOffers();
      }
    });
  }

  function onOffer(d) {
    if (offerLoad) {
      offerLoad.ended.delete(d.conversation);
      offerLoad.added.add(d.conversation);
    }
    addOffer(d);
  }

  // ----------------------------------------------------------------
  // pull mode: Lists and their requests

  function listBox(id) {
    let l = lists.get(id);
    if (l) return l;
    const box = document.createElement('div');
    box.className = 'list';
    box.dataset.list = id;
    const title = document.createElement('strong');
    title.textContent = id;
    const ul = document.createElement('ul');
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'No requests';
    ul.append(empty);
    box.append(title, ul);
    $('lists').append(box);
    placeholder($('lists'));
    l = { id, box, ul, seq: 0, ready: false, loading: false, pending: [], requests: new Map() };
    lists.set(id, l);
    return l;
  }

  function render(l, id) {
    const r = l.requests.get(id);
    if (!r) return;
    if (!r.li) {
      r.li = document.createElement('li');
      r.li.className = 'request';
      r.li.dataset.request = id;
      l.ul.append(r.li);
    }
    const li = r.li;
    li.dataset.state = r.state;
    li.replaceChildren(document.createTextNode(id + ' '));
    const st = document.createElement('span');
    st.className = 'state';
    st.textContent = r.state;
    li.append(st);
    const path = '/requests/' + enc(id);
    // The buttons only ask; the stream's Agent_Joined or Agent_Left
    // redraws the row once the change is made.
    if (r.agents.has(cfg.agent)) {
      li.append(button('Leave', 'leave', () => api('POST', path + '/leave', { agent: cfg.agent })));
    } else {
      li.append(button('Join', 'join', () => api('POST', path + '/join', { agent: cfg.agent })));
    }
    placeholder(l.ul);
  }

  // setSeq records the change the copy reflects, also on the page, where
  // it helps whoever debugs a List that looks wrong.
  function setSeq(l, seq) {
    l.seq = seq;
    l.box.dataset.seq = String(seq);
  }

  // applyChange applies one change (a stream event's data, or a Changes
  // entry) to the copy: it sets the request's state and adds or removes
  // the agent who came or went, so applying it twice changes nothing.
  function applyChange(l, type, c) {
    const id = c.conversation;
    if (!id) return;
    if (c.state === 'CLOSED') {
      const r = l.requests.get(id);
      if (r && r.li) r.li.remove();
      l.requests.delete(id);
      placeholder(l.ul);
      return;
    }
    let r = l.requests.get(id);
    if (!r) {
      r = { state: c.state, agents: new Set(), li: null };
      l.requests.set(id, r);
    }
    r.state = c.state || r.state;
    if (c.agent) {
      // List_Update names the agent of a join (ACTIVE) or a leave
      // (INACTIVE); Agent_Joined and Agent_Left say it outright.
      const joined = type === 'Agent_Joined' || (type === 'List_Update' && c.state === 'ACTIVE');
      const left = type === 'Agent_Left' || (type === 'List_Update' && c.state === 'INACTIVE');
      if (joined) r.agents.add(c.agent);
      if (left) r.agents.delete(c.agent);
    }
    render(l, id);
  }

  // onListEvent follows routing/pull's seq rules: below the copy's seq
  // is old news, equal is the last change told again, one more is the
  // next change, and more than that means changes came between that this
  // agent was not told of, so it catches up through Changes.
  function onListEvent(type, d) {
    if (!d.list) return;
    const l = lists.get(d.list);
    if (!l) {
      // A List the page does not show yet (subscribed since it opened,
      // or one whose request the agent was put in): ask which Lists the
      // agent follows; their snapshots, taken after this event, hold it.
      loadLists();
      return;
    }
    if (!l.ready) {
      l.pending.push({ type, d });
      if (!l.loading) sync(l, false);
      return;
    }
    const seq = Number(d.seq) || 0;
    if (seq < l.seq) return;
    if (seq === l.seq || seq === l.seq + 1) {
      applyChange(l, type, d);
      setSeq(l, seq);
      return;
    }
    l.pending.push({ type, d });
    sync(l, true);
  }

  // sync brings l up to date: from a fresh snapshot, or (catchUp) from
  // the changes after its seq, falling back to a snapshot when the log
  // no longer reaches back that far. Events that arrive meanwhile wait.
  function sync(l, catchUp) {
    if (l.loading) return Promise.resolve();
    l.loading = true;
    l.ready = false;
    const q = '?agent=' + enc(cfg.agent);
    const base = '/lists/' + enc(l.id);
    const load = catchUp
      ? api('GET', base + '/changes' + q + '&after=' + l.seq).then((res) => {
        (res.changes || []).forEach((c) => {
          if (c.seq > l.seq) {
            applyChange(l, c.type, c);
            setSeq(l, c.seq);
          }
        });
      }, (e) => {
        if (e.status === 409) return snapshot(l, base + '/snapshot' + q);
        throw e;
      })
      : snapshot(l, base + '/snapshot' + q);
    return load.then(() => {
      l.loading = false;
      l.ready = true;
      const waiting = l.pending;
      l.pending = [];
      waiting.forEach((p) => onListEvent(p.type, p.d));
    }, (e) => {
      l.loading = false;
      showError(e.message);
    });
  }

  function snapshot(l, path) {
    return api('GET', path).then((snap) => {
      for (const r of l.requests.values()) {
        if (r.li) r.li.remove();
      }
      l.requests.clear();
      (snap.requests || []).forEach((r) => {
        l.requests.set(r.id, { state: r.state, agents: new Set(r.agents || []), li: null });
        render(l, r.id);
      });
      setSeq(l, snap.seq || 0);
      placeholder(l.ul);
    });
  }

  let listsLoading = false;
  let listsReload = false;

  function loadLists() {
    if (listsLoading) {
      listsReload = true;
      return;
    }
    listsLoading = true;
    api('GET', '/agents/' + enc(cfg.agent) + '/lists').then((res) => {
      (res.lists || []).forEach((id) => {
        const l = listBox(id);
        sync(l, l.ready);
      });
    }, (e) => showError(e.message)).finally(() => {
      listsLoading = false;
      if (listsReload) {
        listsReload = false;
        loadLists();
      }
    });
  }

  // catchUp brings everything shown up to date after events may have
  // passed the page by: a reconnect (the stream may not replay what came
  // while no connection was open) or a Stream_Gap (it cannot). Offers
  // are read again; each List applies its changes since its seq, or a
  // fresh snapshot when its log no longer reaches back that far.
  function catchUp() {
    loadOffers();
    for (const l of lists.values()) {
      if (l.ready) sync(l, true);
    }
    loadLists();
  }

  // ----------------------------------------------------------------
  // the stream

  function log(ev) {
    const li = document.createElement('li');
    li.textContent = ev.type;
    const ol = $('log');
    ol.prepend(li);
    while (ol.children.length > 50) ol.lastChild.remove();
  }

  function handle(ev) {
    const d = ev.data || {};
    switch (ev.type) {
      case 'Offer': onOffer(d); break;
      case 'Offer_Cancelled': case 'Assigned': removeOffer(d.conversation); break;
      case 'List_Request': case 'List_Update': case 'Agent_Joined': case 'Agent_Left':
        onListEvent(ev.type, d);
        break;
      case 'Stream_Gap': catchUp(); break;
    }
    log(ev);
  }

  // connect opens the stream. The browser reconnects by itself after a
  // dropped connection, resuming after the last id; when it gives up (an
  // error status, such as a restart's 503) the page opens a new one
  // after a pause, resuming from the last id it saw.
  function connect() {
    let url = cfg.streamUrl + (cfg.streamUrl.includes('?') ? '&' : '?') + 'access_token=' + enc(cfg.token);
    if (lastEventID) url += '&last_event_id=' + enc(lastEventID);
    const es = new EventSource(url);
    source = es;
    es.onopen = () => {
      retryMs = 1000;
      setStatus('live', 'live');
      // The stream is open before anything is read, so nothing that
      // happens from now on can pass the page by (routing/pull's rule).
      // After a reconnect, catch up on what the stream may not replay.
      if (!connectedOnce) {
        connectedOnce = true;
        loadOffers();
        loadLists();
      } else {
        catchUp();
      }
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        setStatus('offline', 'down');
        es.close();
        setTimeout(() => { if (source === es) connect(); }, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      } else {
        setStatus('reconnecting', 'down');
      }
    };
    es.onmessage = (m) => {
      if (m.lastEventId) lastEventID = m.lastEventId;
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (!ev || typeof ev.type !== 'string') return;
      forward(ev);
      handle(ev);
    };
  }

  connect();
})();
