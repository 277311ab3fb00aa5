// Keys as Miniflux readers expect them, on the item listings: j the next item, k the previous
// one, o opens it. A small, optional help: every page works without it. No other script runs.
"use strict";
(function () {
  function items() {
    return Array.prototype.slice.call(document.querySelectorAll("ol.items > li.item"));
  }
  function current(list) {
    var focused = document.activeElement && document.activeElement.closest("li.item");
    var index = list.indexOf(focused);
    if (index < 0) index = list.findIndex(function (li) { return li.classList.contains("current"); });
    return index;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (event.target.closest && event.target.closest("input, select, textarea, button, [contenteditable]")) return;
    var list = items();
    if (!list.length || ["j", "k", "o"].indexOf(event.key) < 0) return;
    var index = current(list);
    if (event.key === "o") {
      if (index >= 0) list[index].querySelector("h2 a").click();
      return;
    }
    index = event.key === "j" ? Math.min(index + 1, list.length - 1) : Math.max(index - 1, 0);
    list.forEach(function (li, i) { li.classList.toggle("current", i === index); });
    list[index].querySelector("h2 a").focus();
    list[index].scrollIntoView({block: "nearest"});
    event.preventDefault();
  });
})();
