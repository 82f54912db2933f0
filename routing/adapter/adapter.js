// The agent adapter: follows the agent's event stream, hands each event to
// the parent window (the CRM) with postMessage, and lets the agent answer
// offers and work pull-mode Lists through the routing API.
'use strict';
(function () {
  const cfg = JSON.parse(document.getElementById('adapter-config').textContent);
  const $ = (id) => document.getElementById(id);
  const offers = new Map();   // conversation id -> <li>
  const lists = new Map();    // list id -> {el, requests: Map(conversation -> <li>), seq}
  const joined = new Set();   // conversations this agent is in
  const isCall = cfg.type === 'call';

  function forward(ev) {
    // The shape the CRM's listener parses: {"type": ..., "data": {...}}.
    window.parent.postMessage(JSON.stringify(ev), cfg.targetOrigin);
  }

  function showError(msg) {
    const el = $('error');
    el.textContent = msg;
    el.hidden = !msg;
  }

  function api(method, path, body) {
    const opts = { method, headers: { 'Authorization': 'Bearer ' + cfg.token } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(cfg.apiPath + path, opts).then(async (r) => {
      const j = await r.json().catch(() => ({}));
      if (!r.ok) {
        throw new Error((j.error && j.error.message) || (r.status + ' ' + r.statusText));
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

  function channelMatches(channel) {
    // A call adapter shows voice; a chat adapter everything else.
    if (!channel) return true;
    return isCall ? channel === 'voice' : channel !== 'voice';
  }

  function placeholder(list) {
    const empty = list.querySelector('.empty');
    const items = list.querySelectorAll('li:not(.empty)').length;
    if (empty) empty.hidden = items > 0;
  }

  function addOffer(d) {
    const conv = d.conversation;
    if (!conv || offers.has(conv) || !channelMatches(d.channel)) return;
    const li = document.createElement('li');
    li.className = 'offer';
    li.dataset.conversation = conv;
    const what = (d.transfer ? 'Transfer' : 'Offer') + ': ' + conv +
      (d.queue ? ' (' + d.queue + ')' : '') + (d.channel ? ' ' + d.channel : '');
    li.append(document.createTextNode(what));
    li.append(button('Accept', 'accept', () =>
      api('POST', '/conversations/' + encodeURIComponent(conv) + '/accept', { agent_id: cfg.agent })
        .then(() => removeOffer(conv))));
    li.append(button('Decline', 'decline', () =>
      api('POST', '/conversations/' + encodeURIComponent(conv) + '/decline', { agent_id: cfg.agent })
        .then(() => removeOffer(conv))));
    $('offers').append(li);
    offers.set(conv, li);
    placeholder($('offers'));
  }

  function removeOffer(conv) {
    const li = offers.get(conv);
    if (li) li.remove();
    offers.delete(conv);
    placeholder($('offers'));
  }

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
    const none = $('lists').querySelector('.empty');
    if (none) none.hidden = true;
    $('lists').append(box);
    l = { el: ul, requests: new Map(), seq: 0 };
    lists.set(id, l);
    return l;
  }

  function setRequest(listID, conv, state, seq) {
    const l = listBox(listID);
    if (seq && seq <= l.seq) return; // already seen
    if (seq) l.seq = seq;
    let li = l.requests.get(conv);
    if (state === 'CLOSED') {
      if (li) li.remove();
      l.requests.delete(conv);
      joined.delete(conv);
      placeholder(l.el);
      return;
    }
    if (!li) {
      li = document.createElement('li');
      li.className = 'request';
      li.dataset.conversation = conv;
      l.requests.set(conv, li);
      l.el.append(li);
    }
    li.dataset.state = state;
    li.replaceChildren(document.createTextNode(conv + ' '));
    const st = document.createElement('span');
    st.className = 'state';
    st.textContent = state;
    li.append(st);
    const path = '/conversations/' + encodeURIComponent(conv);
    if (joined.has(conv)) {
      li.append(button('Leave', 'leave', () => api('POST', path + '/leave', { agent_id: cfg.agent })
        .then(() => { joined.delete(conv); setRequest(listID, conv, li.dataset.state); })));
    } else {
      li.append(button('Join', 'join', () => api('POST', path + '/join', { agent_id: cfg.agent })
        .then(() => { joined.add(conv); setRequest(listID, conv, li.dataset.state); })));
    }
    placeholder(l.el);
  }

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
      case 'Offer': addOffer(d); break;
      case 'Offer_Cancelled': case 'Assigned': removeOffer(d.conversation); break;
      case 'List_Request': case 'List_Update': setRequest(d.list, d.conversation, d.state, d.seq); break;
      case 'Agent_Joined':
        if (d.agent === cfg.agent) joined.add(d.conversation);
        break;
      case 'Agent_Left':
        if (d.agent === cfg.agent) joined.delete(d.conversation);
        break;
    }
    log(ev);
  }

  // What is already there when the page opens: offers made before, and
  // the Lists the agent follows with their open requests.
  function load() {
    api('GET', '/agents/' + encodeURIComponent(cfg.agent)).then((a) => {
      (a.offers || []).forEach(addOffer);
      (a.lists || []).forEach((id) => {
        listBox(id);
        api('GET', '/lists/' + encodeURIComponent(id)).then((snap) => {
          (snap.requests || []).forEach((r) => {
            if ((r.agents || []).includes(cfg.agent)) joined.add(r.conversation);
            setRequest(id, r.conversation, r.state);
          });
          lists.get(id).seq = snap.seq || 0;
        }, (e) => showError(e.message));
      });
    }, (e) => showError(e.message));
  }

  const sep = cfg.streamUrl.includes('?') ? '&' : '?';
  const es = new EventSource(cfg.streamUrl + sep + 'token=' + encodeURIComponent(cfg.token));
  es.onopen = () => { $('status').textContent = 'live'; $('status').className = 'status live'; };
  es.onerror = () => { $('status').textContent = 'reconnecting'; $('status').className = 'status down'; };
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (!ev || typeof ev.type !== 'string') return;
    forward(ev);
    handle(ev);
  };
  load();
})();
