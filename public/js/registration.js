// The registration page (Epic or any SMART server): status panel, Test Connection, Disconnect (copy buttons: copy.js).
// No inline scripts (CSP); every POST carries the CSRF token from <meta name="csrf-token">.
// Text from the server is inserted with textContent only.
(function () {
  'use strict';

  var root = document.getElementById('registration');
  if (!root) return;
  var org = root.getAttribute('data-org');
  // What the page calls the server: "Epic", the administrator's name, or "the EHR".
  var serverName = root.getAttribute('data-server-name') || 'Epic';
  var serverNoun = root.getAttribute('data-server-noun') || serverName;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  var statusBox = document.getElementById('status');
  var reconnect = document.getElementById('reconnect');
  var disconnect = document.getElementById('disconnect');
  var testButton = document.getElementById('test-connection');
  var dialog = document.getElementById('test-dialog');
  var testResult = document.getElementById('test-result');
  var TIMEOUT_MS = 20000;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function replace(box, nodes) {
    while (box.firstChild) box.removeChild(box.firstChild);
    nodes.forEach(function (n) {
      box.appendChild(n);
    });
  }

  function when(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    return d.toLocaleString() + ' (' + d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC)';
  }

  // fetch with a timeout and a readable error: the page never spins forever.
  function call(method, url, body, timeoutMs) {
    var limit = timeoutMs || TIMEOUT_MS;
    var controller = new AbortController();
    var timer = setTimeout(function () {
      controller.abort();
    }, limit);
    var headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['x-csrf-token'] = csrf;
    }
    return fetch(url, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
      signal: controller.signal,
    })
      .then(function (res) {
        if (res.status === 401) {
          window.location.href = '/login?next=' + encodeURIComponent(window.location.pathname + window.location.search);
          throw new Error('Your session has ended. Sign in again.');
        }
        return res
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            if (!res.ok) throw new Error((data && data.message) || 'The server answered ' + res.status + '.');
            return data;
          });
      })
      .catch(function (error) {
        if (error && error.name === 'AbortError') throw new Error('No answer after ' + limit / 1000 + ' s. Try again.');
        throw error instanceof Error && error.message !== 'Failed to fetch' ? error : new Error('The service could not be reached. Check your network and try again.');
      })
      .finally(function () {
        clearTimeout(timer);
      });
  }

  var STATES = {
    connected: ['ok', '✅ Connected to ' + serverName],
    expiring: ['warn', '⚠ Connected to ' + serverName + ', expiring soon'],
    expired: ['bad', '❌ Expired. Action required: reconnect.'],
    error: ['warn', '⚠ Connected, but calls to ' + serverName + ' are failing'],
    not_connected: ['bad', '❌ Not connected. Action required.'],
    not_configured: ['none', 'Not configured: save the ' + serverNoun + ' client below.'],
  };

  function renderStatus(s) {
    var label = STATES[s.state] || ['none', s.state];
    var facts = [];
    function fact(name, value) {
      facts.push(el('dt', {}, [name]), el('dd', {}, [value]));
    }
    if (s.expiresAt) fact('Access token expires', when(s.expiresAt));
    if (s.expiresAt) fact('Renewal', s.refreshable ? (s.endsAt ? 'refreshes until ' + when(s.endsAt) : 'refreshes automatically') : 'no refresh token: reconnect when it expires');
    fact('Last sync', when(s.lastSync));
    if (s.scopes && s.scopes.length) fact('Granted scopes', s.scopes.join(' '));
    if (s.patientId) fact('Patient', s.patientId);
    if (s.lastError) fact('Last error', s.lastError + (s.lastErrorAt ? ' (' + when(s.lastErrorAt) + ')' : ''));
    replace(statusBox, [el('p', { class: 'status-line' }, [el('span', { class: 'badge ' + label[0], id: 'status-badge', 'data-state': s.state }, [label[1]])]), el('dl', { class: 'facts' }, facts)]);
    reconnect.hidden = !(s.state === 'expired' || s.state === 'expiring' || (s.state === 'not_connected' && s.lastError));
    disconnect.hidden = !s.connected;
  }

  function loadStatus() {
    return call('GET', '/fhir/epic-status?org=' + encodeURIComponent(org))
      .then(renderStatus)
      .catch(function (error) {
        replace(statusBox, [el('p', { class: 'alert error', role: 'alert' }, ['Could not load the status: ' + error.message])]);
      });
  }

  function renderLayer(title, layer) {
    var items = (layer.steps || []).map(function (step) {
      return el('li', { class: step.ok ? 'pass' : 'fail' }, [(step.ok ? '✅ ' : '❌ ') + step.name + ': ' + step.message + ' (' + step.durationMs + ' ms)']);
    });
    return el('section', { class: 'layer', 'data-layer': title.toLowerCase(), 'data-ok': String(layer.ok) }, [
      el('h3', {}, [(layer.ok ? '✅ ' : '❌ ') + title + ' (' + layer.durationMs + ' ms)']),
      el('p', {}, [layer.message]),
      el('ul', {}, items),
    ]);
  }

  function runTest() {
    replace(testResult, [el('p', { class: 'muted' }, ['Testing the configuration, then a live call to ' + serverName + '…'])]);
    if (!dialog.open) dialog.showModal();
    testButton.disabled = true;
    // Discovery, a refresh and retried calls can take a while against a slow server.
    return call('POST', '/fhir/test-epic-connection', { org: org }, 90000)
      .then(function (r) {
        replace(testResult, [
          el('p', { class: 'alert ' + (r.ok ? 'success' : 'error'), id: 'test-summary' }, [r.ok ? 'The connection works.' : 'The connection has a problem: see below.']),
          renderLayer('Configuration', r.configuration),
          renderLayer('Live', r.live),
        ]);
      })
      .catch(function (error) {
        replace(testResult, [el('p', { class: 'alert error', role: 'alert', id: 'test-summary' }, ['The test could not run: ' + error.message])]);
      })
      .finally(function () {
        testButton.disabled = false;
        loadStatus();
      });
  }

  testButton.addEventListener('click', runTest);

  disconnect.addEventListener('click', function () {
    if (!window.confirm('Disconnect this organization from ' + serverName + '? The stored tokens are deleted; someone will have to connect again.')) return;
    disconnect.disabled = true;
    call('POST', '/fhir/epic-disconnect', { org: org })
      .then(renderStatus)
      .catch(function (error) {
        replace(statusBox, [el('p', { class: 'alert error', role: 'alert' }, ['Disconnect failed: ' + error.message])]);
      })
      .finally(function () {
        disconnect.disabled = false;
      });
  });

  // private_key_jwt: no secret field, the JWK Set URL and signing key instead. A backend service
  // always uses it, so choosing one selects the other.
  var authMethod = document.getElementById('tokenAuthMethod');
  var connectionMode = document.getElementById('connectionMode');
  var secretInput = document.getElementById('clientSecret');
  function showAuthFields() {
    var jwt = authMethod.value === 'private_key_jwt';
    Array.prototype.forEach.call(document.querySelectorAll('[data-when-jwt]'), function (node) {
      node.hidden = !jwt;
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-when-secret]'), function (node) {
      node.hidden = jwt;
    });
    if (jwt) secretInput.value = '';
  }
  authMethod.addEventListener('change', showAuthFields);
  connectionMode.addEventListener('change', function () {
    if (connectionMode.value === 'backend' && authMethod.value !== 'private_key_jwt') {
      authMethod.value = 'private_key_jwt';
      showAuthFields();
    }
  });

  // Sandbox pre-fills Epic's sandbox base; production clears it if it still holds the sandbox's.
  var environment = document.getElementById('environment');
  var baseUrl = document.getElementById('fhirBaseUrl');
  var sandboxBase = root.getAttribute('data-sandbox-base');
  environment.addEventListener('change', function () {
    if (environment.value === 'sandbox' && !baseUrl.value) baseUrl.value = sandboxBase;
    if (environment.value === 'production' && baseUrl.value === sandboxBase) baseUrl.value = '';
    showJwksUrl();
  });

  // Each environment has its own signing keys and JWK Set URL: show the one of the chosen environment.
  function showJwksUrl() {
    var url = root.getAttribute('data-jwks-' + environment.value);
    if (!url) return;
    Array.prototype.forEach.call(document.querySelectorAll('[data-jwks-url]'), function (node) {
      node.textContent = url;
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-jwks-environment]'), function (node) {
      node.textContent = environment.value;
    });
  }

  // The Connect tab reports back when the callback completes; focus also refreshes the status.
  if ('BroadcastChannel' in window) {
    new BroadcastChannel('epic-connect').addEventListener('message', function (event) {
      if (event.data && event.data.org === org) loadStatus();
    });
  }
  window.addEventListener('focus', loadStatus);

  loadStatus();
  if (root.getAttribute('data-saved') === '1') setTimeout(runTest, 1000);
})();
