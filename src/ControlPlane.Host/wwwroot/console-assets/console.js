// Clipboard for "copy" buttons: a file, not inline script, so the CSP can forbid inline script.
window.controlPlaneConsole = {
  copy: async function (text) {
    try { await navigator.clipboard.writeText(text); return true; } catch { return false; }
  }
};
