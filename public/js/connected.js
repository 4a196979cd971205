// Shown after Epic's callback: tells the registration page (another tab) that the connection changed.
(function () {
  'use strict';
  var flash = document.getElementById('connected-flash');
  if (flash && 'BroadcastChannel' in window) {
    new BroadcastChannel('epic-connect').postMessage({ org: flash.getAttribute('data-org'), connected: true });
  }
})();
