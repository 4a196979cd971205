// Copy buttons: <button type="button" class="copy" data-copy="ID"> copies the text of #ID.
// No inline scripts (CSP). Used by the registration and signing keys pages.
(function () {
  'use strict';

  Array.prototype.forEach.call(document.querySelectorAll('button.copy[data-copy]'), function (button) {
    var label = button.textContent;
    button.addEventListener('click', function () {
      var source = document.getElementById(button.getAttribute('data-copy'));
      if (!source) return;
      var done = function () {
        button.textContent = 'Copied';
        setTimeout(function () {
          button.textContent = label;
        }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent).then(done, function () {
          button.textContent = 'Select and copy';
        });
      } else {
        // Plain http outside localhost has no Clipboard API: select the text for Ctrl+C.
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = document.execCommand && document.execCommand('copy') ? 'Copied' : 'Press Ctrl+C';
      }
    });
  });
})();
