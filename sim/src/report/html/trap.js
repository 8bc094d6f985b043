window.__simErrors = [];
window.onerror = function (message, source, line, column) {
  window.__simErrors.push(message + " (" + (source || "page") + ":" + line + ":" + column + ")");
  document.documentElement.setAttribute("data-js-errors", String(window.__simErrors.length));
  var box = document.getElementById("js-errors");
  if (box) {
    box.textContent = "Script errors:\n" + window.__simErrors.join("\n");
    box.hidden = false;
  }
};
