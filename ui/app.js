// llmgate admin UI: plain DOM, no framework, no network access beyond the gateway itself.
// The master key lives in sessionStorage (this tab only) and goes out as `Authorization: Bearer`.
'use strict';

(() => {
  const KEY_STORE = 'llmgate.masterKey';
  const PAGE_SIZE = 50;
  const MODELS_REFRESH_MS = 5000;
  const PALETTE = ['#2f5bd3', '#e07b39', '#2a9d8f', '#c4322b', '#8e5bd3', '#d4a017',
    '#3c8dbc', '#b5487c', '#5b8c2a', '#7a7f8a'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---------- DOM helpers (text only: nothing from the server is parsed as HTML) ----------

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) {
        node.append(c instanceof Node ? c : document.createTextNode(String(c)));
      }
    }
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children.flat()) {
      if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function swatch(color) {
    return svg('svg', { class: 'swatch', viewBox: '0 0 10 10', width: 10, height: 10, 'aria-hidden': 'true' },
      svg('rect', { width: 10, height: 10, rx: 2, fill: color }));
  }

  let toastTimer = null;
  function toast(message, bad = false) {
    const t = $('#toast');
    t.textContent = message;
    t.classList.toggle('bad', bad);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, bad ? 7000 : 3000);
  }

  // ---------- formatting ----------

  function usd(v) {
    if (v === null || v === undefined) return '—';
    const n = Number(v);
    if (n === 0) return '$0';
    if (Math.abs(n) >= 0.01) return '$' + n.toFixed(2);
    if (Math.abs(n) < 0.000001) return '< $0.000001';
    return '$' + n.toFixed(6).replace(/0+$/, '');
  }

  function count(v) {
    return v === null || v === undefined ? '—' : Number(v).toLocaleString('en-US');
  }

  function when(iso) {
    if (!iso) return 'never';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }

  function isoDay(d) { return d.toISOString().slice(0, 10); }

  // ---------- the gateway's API ----------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + (sessionStorage.getItem(KEY_STORE) || '') };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, 'The gateway cannot be reached.');
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) {
      const message = (data && data.error && data.error.message) || text || res.statusText;
      throw new ApiError(res.status, message);
    }
    return data;
  }

  // An expired session (the master key changed, or was never right) sends the user back to log in.
  function failed(err) {
    if (err instanceof ApiError && err.status === 401) {
      logout('The master key was refused: ' + err.message);
      return;
    }
    toast(err.message || String(err), true);
  }

  // ---------- login and navigation ----------

  const views = ['login', 'keys', 'spend', 'models'];
  let current = null;

  function show(view) {
    current = view;
    for (const v of views) $('#view-' + v).hidden = v !== view;
    const loggedIn = view !== 'login';
    $('#tabs').hidden = !loggedIn;
    $('#logout').hidden = !loggedIn;
    for (const a of document.querySelectorAll('#tabs a')) {
      a.classList.toggle('active', a.dataset.view === view);
    }
    stopModelsTimer();
    if (view === 'keys') Keys.load().catch(failed);
    if (view === 'spend') Spend.load().catch(failed);
    if (view === 'models') Models.start();
    if (view === 'login') $('#login-key').focus();
  }

  function route() {
    if (!sessionStorage.getItem(KEY_STORE)) return show('login');
    const wanted = location.hash.replace('#', '');
    show(views.includes(wanted) && wanted !== 'login' ? wanted : 'keys');
  }

  function logout(message) {
    sessionStorage.removeItem(KEY_STORE);
    Keys.reset();
    const err = $('#login-error');
    err.textContent = message || '';
    err.hidden = !message;
    show('login');
  }

  async function login(event) {
    event.preventDefault();
    const input = $('#login-key');
    const key = input.value.trim();
    const err = $('#login-error');
    err.hidden = true;
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    try {
      // Only the master key may list keys: this checks the key and that it is the master key.
      await api('GET', '/key/list?page=1&size=1');
    } catch (e) {
      sessionStorage.removeItem(KEY_STORE);
      err.textContent = e.status === 401 || e.status === 403
        ? 'This is not the master key (' + e.message + ')'
        : e.message;
      err.hidden = false;
      return;
    }
    input.value = '';
    if (!location.hash || location.hash === '#login') history.replaceState(null, '', '#keys');
    route();
  }

  // ---------- Keys ----------

  const Keys = {
    page: 1,
    totalPages: 1,
    rows: [],
    editing: null,

    reset() { this.page = 1; this.rows = []; $('#keys-table tbody').replaceChildren(); },

    async load() {
      const data = await api('GET', `/key/list?page=${this.page}&size=${PAGE_SIZE}&return_full_object=true`);
      this.rows = data.keys || [];
      this.totalPages = Math.max(1, data.total_pages || 1);
      if (this.page > this.totalPages) { this.page = this.totalPages; return this.load(); }
      this.render();
    },

    render() {
      const filter = $('#keys-filter').value.trim().toLowerCase();
      const rows = this.rows.filter((k) => !filter
        || (k.key_alias || '').toLowerCase().includes(filter)
        || (k.key_name || '').toLowerCase().includes(filter)
        || (k.token || '').startsWith(filter));
      $('#keys-table tbody').replaceChildren(...rows.map((k) => this.row(k)));
      $('#keys-empty').hidden = this.rows.length > 0;
      $('#keys-page').textContent = `Page ${this.page} of ${this.totalPages}`;
      $('#keys-prev').disabled = this.page <= 1;
      $('#keys-next').disabled = this.page >= this.totalPages;
    },

    row(k) {
      const limits = [
        k.rpm_limit != null ? `${count(k.rpm_limit)} rpm` : null,
        k.tpm_limit != null ? `${count(k.tpm_limit)} tpm` : null,
        k.max_parallel_requests != null ? `${count(k.max_parallel_requests)} parallel` : null,
      ].filter(Boolean).join(' · ') || 'none';
      const models = Array.isArray(k.models) && k.models.length ? k.models.join(', ') : 'all';
      const expired = k.expires && new Date(k.expires) < new Date();
      const status = k.blocked
        ? el('span', { class: 'badge bad', text: 'Blocked' })
        : expired ? el('span', { class: 'badge warn', text: 'Expired' })
          : el('span', { class: 'badge', text: 'Active' });
      return el('tr', { dataset: { token: k.token, alias: k.key_alias || '' } },
        el('td', { class: 'alias', text: k.key_alias || '—' }),
        el('td', {}, el('code', { text: k.key_name || k.token.slice(0, 10) })),
        el('td', { class: 'muted', text: models }),
        el('td', { class: 'num spend', text: usd(k.spend) }),
        el('td', { class: 'num', text: k.max_budget == null ? 'none' : usd(k.max_budget) }),
        el('td', { class: 'muted limits', text: limits }),
        el('td', { class: 'muted', text: when(k.expires) }),
        el('td', { class: 'status' }, status),
        el('td', { class: 'actions' },
          el('button', { class: 'button small', type: 'button', text: 'Edit', dataset: { act: 'edit' }, onclick: () => this.openEdit(k) }),
          el('button', {
            class: 'button small', type: 'button', text: k.blocked ? 'Unblock' : 'Block',
            dataset: { act: k.blocked ? 'unblock' : 'block' }, onclick: () => this.setBlocked(k, !k.blocked),
          }),
          el('button', { class: 'button small subtle', type: 'button', text: 'Delete', dataset: { act: 'delete' }, onclick: () => this.remove(k) })));
    },

    openNew() {
      this.editing = null;
      const form = $('#key-form');
      form.reset();
      $('#key-dialog-title').textContent = 'New key';
      $('#key-submit').textContent = 'Create key';
      $('#duration-field').hidden = false;
      this.openDialog();
    },

    openEdit(k) {
      this.editing = k;
      const form = $('#key-form');
      form.reset();
      $('#key-dialog-title').textContent = 'Edit ' + (k.key_alias || k.key_name);
      $('#key-submit').textContent = 'Save';
      $('#duration-field').hidden = true;
      const set = (name, v) => { form.elements[name].value = v == null ? '' : String(v); };
      set('key_alias', k.key_alias);
      set('models', Array.isArray(k.models) ? k.models.join(', ') : '');
      set('max_budget', k.max_budget);
      set('rpm_limit', k.rpm_limit);
      set('tpm_limit', k.tpm_limit);
      set('max_parallel_requests', k.max_parallel_requests);
      this.openDialog();
    },

    openDialog() {
      $('#key-error').hidden = true;
      $('#key-form').hidden = false;
      $('#key-created').hidden = true;
      $('#key-dialog').showModal();
      $('#key-form').elements.key_alias.focus();
    },

    // The form's fields as the key API takes them; an empty number field clears the limit.
    fields() {
      const f = $('#key-form').elements;
      const number = (name, integer) => {
        const text = f[name].value.trim();
        if (text === '') return null;
        const n = Number(text);
        if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
          throw new Error(`${f[name].closest('label').firstChild.textContent.trim()}: expected ${integer ? 'a whole number' : 'a number'} of at least 0`);
        }
        return n;
      };
      const body = {
        key_alias: f.key_alias.value.trim() || null,
        models: f.models.value.split(',').map((m) => m.trim()).filter(Boolean),
        max_budget: number('max_budget', false),
        rpm_limit: number('rpm_limit', true),
        tpm_limit: number('tpm_limit', true),
        max_parallel_requests: number('max_parallel_requests', true),
      };
      return body;
    },

    async submit(event) {
      event.preventDefault();
      const err = $('#key-error');
      err.hidden = true;
      let body;
      try { body = this.fields(); } catch (e) { err.textContent = e.message; err.hidden = false; return; }
      const button = $('#key-submit');
      button.disabled = true;
      try {
        if (this.editing) {
          body.key = this.editing.token;
          await api('POST', '/key/update', body);
          $('#key-dialog').close();
          toast('Key updated');
        } else {
          const duration = $('#key-form').elements.duration.value;
          if (duration === 'never') body.duration = null;
          else if (duration !== 'default') body.duration = duration;
          const created = await api('POST', '/key/generate', body);
          $('#new-key').textContent = created.key;
          $('#copy-key').textContent = 'Copy';
          $('#key-form').hidden = true;
          $('#key-created').hidden = false;
          $('#copy-key').focus();
        }
        await this.load();
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) { $('#key-dialog').close(); failed(e); return; }
        err.textContent = e.message;
        err.hidden = false;
      } finally {
        button.disabled = false;
      }
    },

    async copy() {
      const text = $('#new-key').textContent;
      let copied = false;
      try {
        await navigator.clipboard.writeText(text);
        copied = true;
      } catch (_) {
        // No clipboard API (or no permission): copy from a selection instead.
        const range = document.createRange();
        range.selectNodeContents($('#new-key'));
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        copied = document.execCommand('copy');
      }
      $('#copy-key').textContent = copied ? 'Copied' : 'Select and copy';
    },

    closeDialog() {
      $('#new-key').textContent = '';
      $('#key-dialog').close();
    },

    async setBlocked(k, blocked) {
      try {
        await api('POST', blocked ? '/key/block' : '/key/unblock', { key: k.token });
        toast(blocked ? 'Key blocked' : 'Key unblocked');
        await this.load();
      } catch (e) { failed(e); }
    },

    async remove(k) {
      const name = k.key_alias || k.key_name;
      if (!(await confirmDelete(`Delete key ${name}? Requests with it will be refused. This cannot be undone.`))) return;
      try {
        await api('POST', '/key/delete', { keys: [k.token] });
        toast('Key deleted');
        await this.load();
      } catch (e) { failed(e); }
    },
  };

  function confirmDelete(text) {
    const dialog = $('#confirm-dialog');
    $('#confirm-text').textContent = text;
    return new Promise((resolve) => {
      const done = (answer) => {
        dialog.removeEventListener('click', onClick);
        dialog.removeEventListener('cancel', onCancel);
        dialog.close();
        resolve(answer);
      };
      const onClick = (e) => {
        const b = e.target.closest('[data-answer]');
        if (b) done(b.dataset.answer === 'yes');
      };
      const onCancel = (e) => { e.preventDefault(); done(false); };
      dialog.addEventListener('click', onClick);
      dialog.addEventListener('cancel', onCancel);
      dialog.showModal();
      $('#confirm-yes').focus();
    });
  }

  // ---------- Spend ----------

  // Every key on the gateway by hash, for the chart labels (the report names keys by hash).
  async function allKeys() {
    const byToken = new Map();
    for (let page = 1, pages = 1; page <= pages && page <= 100; page += 1) {
      const data = await api('GET', `/key/list?page=${page}&size=100&return_full_object=true`);
      for (const k of data.keys || []) byToken.set(k.token, k);
      pages = data.total_pages || 1;
    }
    return byToken;
  }

  function keyLabel(token, keys) {
    if (!token) return 'master key';
    const k = keys.get(token);
    if (!k) return 'deleted key ' + token.slice(0, 8);
    return k.key_alias || k.key_name || token.slice(0, 8);
  }

  function daysBetween(from, to) {
    const days = [];
    const d = new Date(from + 'T00:00:00Z');
    const end = new Date(to + 'T00:00:00Z');
    while (d <= end && days.length < 400) {
      days.push(isoDay(d));
      d.setUTCDate(d.getUTCDate() + 1);
    }
    return days;
  }

  const Spend = {
    initialised: false,

    setRange(days) {
      const to = new Date();
      const from = new Date(to.getTime() - (days - 1) * 86400000);
      $('#spend-from').value = isoDay(from);
      $('#spend-to').value = isoDay(to);
    },

    async load() {
      if (!this.initialised) { this.setRange(30); this.initialised = true; }
      const from = $('#spend-from').value;
      const to = $('#spend-to').value;
      if (!from || !to || from > to) { toast('Choose a start date on or before the end date', true); return; }
      const [report, keys] = await Promise.all([
        api('GET', `/global/spend/report?start_date=${from}&end_date=${to}&group_by=model`),
        allKeys(),
      ]);
      const perKey = new Map();
      const perModel = new Map();
      let total = 0;
      const add = (map, name, day, v) => {
        if (!map.has(name)) map.set(name, new Map());
        const series = map.get(name);
        series.set(day, (series.get(day) || 0) + v);
      };
      for (const entry of report || []) {
        const day = String(entry.group_by_day).slice(0, 10);
        for (const m of entry.models || []) {
          total += m.total_spend;
          add(perModel, m.model || '(none)', day, m.total_spend);
          for (const part of m.metadata || []) add(perKey, keyLabel(part.api_key, keys), day, part.spend);
        }
      }
      $('#spend-total').textContent = `Total spend from ${from} to ${to}: ${usd(total)}`;
      const days = daysBetween(from, to);
      drawChart($('#chart-keys'), days, perKey, 'keys');
      drawChart($('#chart-models'), days, perModel, 'models');
    },
  };

  // The biggest series keep their own colour; the rest are summed as "other".
  function topSeries(map, limit) {
    const all = [...map.entries()].map(([name, values]) => ({
      name, values, total: [...values.values()].reduce((a, b) => a + b, 0),
    })).filter((s) => s.total > 0).sort((a, b) => b.total - a.total);
    if (all.length <= limit) return all;
    const rest = all.slice(limit - 1);
    const other = new Map();
    for (const s of rest) for (const [d, v] of s.values) other.set(d, (other.get(d) || 0) + v);
    return [...all.slice(0, limit - 1), { name: `other (${rest.length})`, values: other, total: rest.reduce((a, s) => a + s.total, 0) }];
  }

  // A round step (1, 2 or 5 times a power of ten) giving about four gridlines up to `max`.
  function niceScale(max) {
    const rough = (max > 0 ? max : 1) / 4;
    const exp = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * exp).find((s) => s >= rough);
    const ticks = Math.max(1, Math.ceil(max / step - 1e-9));
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return { step, ticks, top: step * ticks, label: (v) => '$' + v.toFixed(decimals) };
  }

  // A stacked bar per day, one colour per series, drawn as inline SVG.
  function drawChart(container, days, map, what) {
    const series = topSeries(map, PALETTE.length);
    if (!series.length) {
      container.replaceChildren(el('p', { class: 'empty', text: `No spend by ${what} in this period.` }));
      return;
    }
    series.forEach((s, i) => { s.color = PALETTE[i % PALETTE.length]; });
    const W = 900; const H = 260;
    const M = { left: 72, right: 12, top: 12, bottom: 28 };
    const plotW = W - M.left - M.right; const plotH = H - M.top - M.bottom;
    const dayTotals = days.map((d) => series.reduce((a, s) => a + (s.values.get(d) || 0), 0));
    const scale = niceScale(Math.max(...dayTotals));
    const top = scale.top;
    const y = (v) => M.top + plotH - (v / top) * plotH;
    const band = plotW / days.length;
    const barW = Math.max(1, Math.min(40, band * 0.7));
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Spend per day by ${what}` });
    for (let i = 0; i <= scale.ticks; i += 1) {
      const v = scale.step * i;
      root.append(
        svg('line', { class: i === 0 ? 'axis' : 'grid-line', x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }),
        svg('text', { x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, i === 0 ? '$0' : scale.label(v)));
    }
    const every = Math.ceil(days.length / 12);
    days.forEach((day, i) => {
      const x = M.left + i * band + (band - barW) / 2;
      let base = 0;
      for (const s of series) {
        const v = s.values.get(day) || 0;
        if (v <= 0) continue;
        const h = Math.max(1, (v / top) * plotH);
        root.append(svg('rect', {
          x, y: y(base) - h, width: barW, height: h, fill: s.color, 'data-series': s.name, 'data-day': day,
        }, svg('title', {}, `${day} · ${s.name}: ${usd(v)}`)));
        base += v;
      }
      if (i % every === 0) {
        root.append(svg('text', { x: M.left + i * band + band / 2, y: H - 8, 'text-anchor': 'middle' }, day.slice(5)));
      }
    });
    const legend = el('ul', { class: 'legend' }, series.map((s) => el('li', { dataset: { series: s.name } },
      swatch(s.color), el('span', { class: 'name', text: s.name }), el('span', { class: 'amount', text: usd(s.total) }))));
    container.replaceChildren(root, legend);
  }

  // ---------- Models ----------

  let modelsTimer = null;
  function stopModelsTimer() { clearInterval(modelsTimer); modelsTimer = null; }

  function stateBadge(d) {
    const until = d.cooldown_until ? new Date(d.cooldown_until) : null;
    if (until && until > new Date()) {
      return el('span', { class: 'badge warn', text: 'Cooling down until ' + until.toISOString().slice(11, 19) + ' UTC' });
    }
    return d.healthy === false
      ? el('span', { class: 'badge bad', text: 'Unhealthy' })
      : el('span', { class: 'badge', text: 'Healthy' });
  }

  const usedOf = (used, limit) => (limit == null ? count(used) : `${count(used)} / ${count(limit)}`);

  const Models = {
    start() {
      this.load().catch(failed);
      stopModelsTimer();
      modelsTimer = setInterval(() => {
        if (current === 'models' && !document.hidden) this.load().catch(() => {});
      }, MODELS_REFRESH_MS);
    },

    async load() {
      let state;
      try {
        state = await api('GET', '/model/state');
      } catch (e) {
        if (e.status !== 404) throw e;
        return this.renderUnavailable();
      }
      const groups = new Map();
      for (const d of state.data || []) {
        if (!groups.has(d.model_name)) groups.set(d.model_name, []);
        groups.get(d.model_name).push(d);
      }
      const body = [...groups.entries()].map(([name, deps]) => {
        const healthy = deps.filter((d) => d.healthy !== false && !(d.cooldown_until && new Date(d.cooldown_until) > new Date())).length;
        return el('div', { class: 'card group', dataset: { group: name } },
          el('div', { class: 'group-head' }, el('h3', { text: name }),
            el('span', { class: 'muted', text: `${deps.length} deployment${deps.length === 1 ? '' : 's'}, ${healthy} available` })),
          el('table', { class: 'table' },
            el('thead', {}, el('tr', {}, ['Deployment', 'Provider', 'API base', 'State', 'In flight', 'RPM', 'TPM', 'Latency']
              .map((h, i) => el('th', { class: i >= 4 ? 'num' : undefined, text: h })))),
            el('tbody', {}, deps.map((d) => el('tr', { dataset: { modelId: d.model_id } },
              el('td', {}, el('code', { text: String(d.model_id).slice(0, 12), title: d.model_id })),
              el('td', { text: d.provider || '—' }),
              el('td', { class: 'muted', text: d.api_base || '—' }),
              el('td', {}, stateBadge(d)),
              el('td', { class: 'num', text: count(d.in_flight) }),
              el('td', { class: 'num', text: usedOf(d.rpm_used, d.rpm) }),
              el('td', { class: 'num', text: usedOf(d.tpm_used, d.tpm) }),
              el('td', { class: 'num', text: d.latency_ms == null ? '—' : `${Number(d.latency_ms).toFixed(0)} ms` }))))));
      });
      $('#models-body').replaceChildren(...(body.length ? body : [el('p', { class: 'empty', text: 'No models are configured.' })]));
      $('#models-updated').textContent = 'Updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    },

    // Without /model/state, the configured deployments are still worth listing.
    async renderUnavailable() {
      stopModelsTimer();
      const notice = el('p', { class: 'notice', id: 'models-unavailable' },
        'Live model state is not available: this gateway does not answer ',
        el('code', { text: 'GET /model/state' }), '. The configured deployments are listed below without their state.');
      let info = null;
      try { info = await api('GET', '/model/info'); } catch (_) { info = null; }
      const rows = ((info && info.data) || []).map((m) => el('tr', {},
        el('td', { text: m.model_name }),
        el('td', {}, el('code', { text: (m.litellm_params && m.litellm_params.model) || '—' })),
        el('td', { class: 'muted', text: (m.litellm_params && m.litellm_params.api_base) || '—' }),
        el('td', {}, el('code', { text: String((m.model_info && m.model_info.id) || '—').slice(0, 12) }))));
      const table = rows.length
        ? el('div', { class: 'card flush' }, el('table', { class: 'table' },
          el('thead', {}, el('tr', {}, ['Model', 'Deployment model', 'API base', 'ID'].map((h) => el('th', { text: h })))),
          el('tbody', {}, rows)))
        : null;
      $('#models-body').replaceChildren(notice, ...(table ? [table] : []));
      $('#models-updated').textContent = '';
    },
  };

  // ---------- wiring ----------

  document.addEventListener('DOMContentLoaded', () => {
    $('#login-form').addEventListener('submit', login);
    $('#logout').addEventListener('click', () => logout());
    window.addEventListener('hashchange', route);

    $('#keys-new').addEventListener('click', () => Keys.openNew());
    $('#keys-refresh').addEventListener('click', () => Keys.load().catch(failed));
    $('#keys-filter').addEventListener('input', () => Keys.render());
    $('#keys-prev').addEventListener('click', () => { Keys.page -= 1; Keys.load().catch(failed); });
    $('#keys-next').addEventListener('click', () => { Keys.page += 1; Keys.load().catch(failed); });
    $('#key-form').addEventListener('submit', (e) => Keys.submit(e));
    $('#copy-key').addEventListener('click', () => Keys.copy());
    for (const b of document.querySelectorAll('#key-dialog [data-close]')) {
      b.addEventListener('click', () => Keys.closeDialog());
    }
    // The plaintext key leaves the page when its dialog closes, however it is closed.
    $('#key-dialog').addEventListener('close', () => { $('#new-key').textContent = ''; });

    $('#spend-refresh').addEventListener('click', () => Spend.load().catch(failed));
    for (const b of document.querySelectorAll('.presets [data-days]')) {
      b.addEventListener('click', () => { Spend.setRange(Number(b.dataset.days)); Spend.load().catch(failed); });
    }
    $('#models-refresh').addEventListener('click', () => Models.load().catch(failed));
    route();
  });
})();
