// Forms with data-confirm="question" ask before they submit (e.g. revoking an API key).
// No inline scripts (CSP).
(function () {
  'use strict';

  Array.prototype.forEach.call(document.querySelectorAll('form[data-confirm]'), function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });
})();
