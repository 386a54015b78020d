// Behaviour of the HTML pages (harness.webpage): result-set picker, hover tips, legend toggles.
// Embedded into each page; it fetches nothing.
(function () {
  "use strict";
  var picker = document.getElementById("set-picker");
  if (picker) {
    var show = function () {
      document.querySelectorAll("section.resultset").forEach(function (s) {
        s.hidden = s.dataset.set !== picker.value;
      });
    };
    picker.addEventListener("change", show);
    show();
  }

  var tip = document.getElementById("tip");
  document.addEventListener("mouseover", function (e) {
    var el = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (!el) { tip.hidden = true; return; }
    tip.textContent = el.getAttribute("data-tip");
    tip.hidden = false;
    var r = el.getBoundingClientRect();
    var left = window.scrollX + r.right + 10;
    if (left + tip.offsetWidth > window.scrollX + document.documentElement.clientWidth) {
      left = window.scrollX + r.left - tip.offsetWidth - 10;
    }
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = (window.scrollY + r.top - 8) + "px";
  });

  document.querySelectorAll(".legend-item").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var on = btn.getAttribute("aria-pressed") !== "true";
      btn.setAttribute("aria-pressed", on ? "true" : "false");
      var fig = btn.closest("figure");
      fig.querySelectorAll("svg [data-series]").forEach(function (el) {
        if (el.getAttribute("data-series") === btn.dataset.series) { el.classList.toggle("off", !on); }
      });
    });
  });
})();
